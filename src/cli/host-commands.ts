// `jit-ssh-ca host sign|token`: host certificates by hand, and the one-time
// tokens with which a server's refresher enrolls itself.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ServerConfig } from '../config.js';
import { parseDuration } from '../core/duration.js';
import { openAdmin } from './admin-client.js';
import { UsageError } from './run.js';

export interface HostFlags {
  json: boolean;
  name?: string;
  names?: string;
  for?: string;
  ttl?: string;
}

const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');

function seconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = parseDuration(text);
  if (n === null) throw new UsageError(`${flag} must be a duration such as 30d, 12h, 90m`);
  return n;
}

/** Where ssh-keygen -s puts the certificate of KEY.pub: KEY-cert.pub. */
export function certPathFor(pubFile: string): string {
  return pubFile.endsWith('.pub') ? `${pubFile.slice(0, -4)}-cert.pub` : `${pubFile}-cert.pub`;
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fs.writeFile(tmp, text, { mode: 0o644 });
  await fs.rename(tmp, file);
}

export async function hostCommand(sub: string | undefined, rest: string[], config: ServerConfig, flags: HostFlags): Promise<number> {
  switch (sub) {
    case 'sign': {
      if (rest.length !== 1 || !flags.name) throw new UsageError('usage: jit-ssh-ca host sign HOST_PUBKEY_FILE --name NAME[,NAME...] [--for DURATION]');
      const file = path.resolve(rest[0]!);
      let line: string;
      try {
        line = (await fs.readFile(file, 'utf8')).trim();
      } catch (e) {
        throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      const ttl = seconds(flags.for, '--for');
      const admin = await openAdmin(config);
      try {
        const cert = await admin.hosts.sign({ publicKey: line, names: list(flags.name), ttl });
        const out = certPathFor(file);
        await writeAtomically(out, cert.certificate + '\n');
        if (flags.json) process.stdout.write(JSON.stringify({ ...cert, file: out }) + '\n');
        else {
          process.stdout.write(cert.certificate + '\n');
          process.stderr.write(`wrote ${out}: host certificate for ${cert.principals.join(',')}, serial ${cert.serial}, valid until ${cert.valid_before}; in sshd_config: HostCertificate ${out}\n`);
        }
        return 0;
      } finally {
        await admin.close();
      }
    }
    case 'token': {
      if (rest.length !== 1) throw new UsageError('usage: jit-ssh-ca host token NAME [--names a,b] [--ttl 1h]');
      const names = [rest[0]!, ...list(flags.names)];
      const ttl = seconds(flags.ttl, '--ttl');
      const admin = await openAdmin(config);
      try {
        const t = await admin.hosts.createToken({ names, ttl });
        if (flags.json) process.stdout.write(JSON.stringify(t) + '\n');
        else {
          process.stdout.write(t.token + '\n');
          process.stderr.write(`one-time enrollment token for ${t.names.join(',')}, until ${t.expires_at}; on the server: jit-ssh-ca server-setup --url URL --enroll-token TOKEN\n`);
        }
        return 0;
      } finally {
        await admin.close();
      }
    }
    default:
      throw new UsageError('usage: jit-ssh-ca host sign|token');
  }
}
