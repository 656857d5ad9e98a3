// $JIT_SSH_HOME: the session, the per-role keys and certificates and the host
// CA's known_hosts file, private
// to the user (directory 0700, files 0600), written atomically.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface Session {
  server: string;
  username: string;
  token: string;
  expires_at: string;
}

export class Home {
  constructor(readonly dir: string) {}

  get sessionFile(): string {
    return path.join(this.dir, 'session.json');
  }

  /** The `@cert-authority` lines for the host CA, kept by host-trust.ts. */
  get knownHostsFile(): string {
    return path.join(this.dir, 'known_hosts');
  }

  get keysDir(): string {
    return path.join(this.dir, 'keys');
  }

  /** The key and certificate paths kept for a role: ssh config can name them. */
  keyPaths(role: string): { key: string; pub: string; cert: string } {
    const key = path.join(this.keysDir, role);
    return { key, pub: `${key}.pub`, cert: `${key}-cert.pub` };
  }

  async ensure(): Promise<void> {
    for (const d of [this.dir, this.keysDir]) {
      await fs.mkdir(d, { recursive: true, mode: 0o700 });
      await fs.chmod(d, 0o700);
    }
  }

  /** Writes via a temporary file and rename, so a reader never sees half a key. */
  async write(file: string, content: string, mode = 0o600): Promise<void> {
    await this.ensure();
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await fs.writeFile(tmp, content, { mode });
    await fs.chmod(tmp, mode);
    await fs.rename(tmp, file);
  }

  async session(): Promise<Session | null> {
    try {
      return JSON.parse(await fs.readFile(this.sessionFile, 'utf8')) as Session;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`cannot read ${this.sessionFile}: ${(e as Error).message}`);
    }
  }

  saveSession(s: Session): Promise<void> {
    return this.write(this.sessionFile, JSON.stringify(s, null, 2) + '\n');
  }

  async forgetSession(): Promise<void> {
    await fs.rm(this.sessionFile, { force: true });
  }

  /** Roles that have a certificate file here. */
  async roles(): Promise<string[]> {
    try {
      return (await fs.readdir(this.keysDir)).filter((f) => f.endsWith('-cert.pub')).map((f) => f.slice(0, -'-cert.pub'.length)).sort();
    } catch {
      return [];
    }
  }
}
