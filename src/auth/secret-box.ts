// Secrets at rest (TOTP seeds) are sealed with AES-256-GCM. The associated
// data binds each ciphertext to its owner, so a sealed secret copied into
// another user's row does not open.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';

const VERSION = 'v1';

export interface SecretBox {
  seal(plaintext: string, context: string): string;
  open(sealed: string, context: string): string;
}

export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new SecretBoxError('the secret key must be 32 bytes');
  return {
    seal(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${VERSION}:${Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64')}`;
    },
    open(sealed, context) {
      const [version, body] = sealed.split(':');
      if (version !== VERSION || !body) throw new SecretBoxError('unknown sealed secret format');
      const raw = Buffer.from(body, 'base64');
      if (raw.length < 28) throw new SecretBoxError('sealed secret is truncated');
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      try {
        return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretBoxError('sealed secret does not open with this key (wrong JIT_SSH_SECRET_KEY?)');
      }
    },
  };
}

/**
 * The embedded default's key: `dataDir/secret.key`, 32 random bytes made on
 * first start with mode 0600 and refused when others can read it.
 */
export async function loadOrCreateSecretKey(dataDir: string): Promise<Buffer> {
  const file = path.join(dataDir, 'secret.key');
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  try {
    const h = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await h.writeFile(randomBytes(32).toString('base64') + '\n');
      await h.sync();
    } finally {
      await h.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = await fs.stat(file);
  if ((st.mode & 0o077) !== 0) {
    throw new SecretBoxError(`${file} is accessible by group or others (mode 0${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}`);
  }
  const key = Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64');
  if (key.length !== 32) throw new SecretBoxError(`${file} does not hold a 32-byte base64 key`);
  return key;
}
