// `jit-ssh-ca user ...`

import qrcode from 'qrcode-terminal';
import type { ServerConfig } from '../config.js';
import type { Enrollment } from '../services/users.js';
import { openAdmin } from './admin-client.js';
import { readSecret, readStdin } from './prompt.js';
import { UsageError } from './run.js';

export interface UserOptions {
  json: boolean;
  groups: string | undefined;
  passwordStdin: boolean;
}

const splitGroups = (text: string | undefined) => (text ? text.split(',').map((g) => g.trim()).filter(Boolean) : []);

async function newPassword(opts: UserOptions): Promise<string> {
  if (opts.passwordStdin) return readStdin();
  const first = await readSecret('New password: ');
  const second = await readSecret('Repeat it: ');
  if (first !== second) throw new UsageError('the passwords do not match');
  return first;
}

function qr(text: string): Promise<string> {
  return new Promise((resolve) => qrcode.generate(text, { small: true }, resolve));
}

async function printEnrollment(e: Enrollment, opts: UserOptions, what: string): Promise<void> {
  if (opts.json) {
    process.stdout.write(JSON.stringify(e) + '\n');
    return;
  }
  if (process.stdout.isTTY) process.stdout.write((await qr(e.otpauth_uri)) + '\n');
  process.stdout.write(e.otpauth_uri + '\n');
  process.stderr.write(`${what}; add the TOTP secret to an authenticator app (scan the code or paste the URI). It is shown only now.\n`);
}

/** "; 2 grants ended, 3 certificates revoked (...)", or nothing when nothing ended. */
export function endedText(e: { ended_grants: string[]; revoked: string[] }): string {
  if (e.ended_grants.length === 0 && e.revoked.length === 0) return '';
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
  return `; ${n(e.ended_grants.length, 'grant')} ended (${e.ended_grants.join(' ') || '-'}), ${n(e.revoked.length, 'certificate')} revoked${e.revoked.length > 0 ? ` (${e.revoked.join(' ')}); servers refuse them once their KRL is refreshed` : ''}`;
}

function one(args: string[], usage: string): string {
  if (args.length !== 1) throw new UsageError(`usage: jit-ssh-ca user ${usage}`);
  return args[0]!;
}

export async function userCommand(sub: string | undefined, args: string[], config: ServerConfig, opts: UserOptions): Promise<number> {
  const known = ['add', 'list', 'disable', 'enable', 'reset-mfa', 'set-password', 'set-groups'];
  if (!sub || !known.includes(sub)) throw new UsageError(`usage: jit-ssh-ca user ${known.join('|')} ...`);
  // Ask for the password before touching the database or the socket.
  const name = sub === 'list' ? '' : one(sub === 'set-groups' ? args.slice(0, 1) : args, `${sub} NAME`);
  const password = sub === 'add' || sub === 'set-password' ? await newPassword(opts) : '';
  const admin = await openAdmin(config);
  try {
    const { users, actor } = admin;
    switch (sub) {
      case 'add':
        await printEnrollment(await users.add({ name, groups: splitGroups(opts.groups), password }, actor), opts, `user ${name} created`);
        break;
      case 'list': {
        const list = await users.list();
        if (opts.json) process.stdout.write(JSON.stringify({ users: list }) + '\n');
        else {
          const rows = [['NAME', 'GROUPS', 'ENABLED', 'LAST LOGIN'], ...list.map((u) => [u.name, u.groups.join(',') || '-', u.enabled ? 'yes' : 'no', u.last_login_at ?? 'never'])];
          const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
          process.stdout.write(rows.map((r) => r.map((cell, i) => cell.padEnd(width[i]!)).join('  ').trimEnd()).join('\n') + '\n');
        }
        break;
      }
      case 'disable': {
        const ended = await users.disable(name, actor);
        if (opts.json) process.stdout.write(JSON.stringify(ended) + '\n');
        process.stderr.write(`user ${name} disabled; their sessions have ended${endedText(ended)}\n`);
        break;
      }
      case 'enable':
        await users.enable(name, actor);
        process.stderr.write(`user ${name} enabled\n`);
        break;
      case 'reset-mfa':
        await printEnrollment(await users.resetMfa(name, actor), opts, `new TOTP secret for ${name}; the old one, their sessions and their passkeys no longer work`);
        break;
      case 'set-password':
        await users.setPassword(name, password, actor);
        process.stderr.write(`password of ${name} changed; their sessions have ended\n`);
        break;
      case 'set-groups': {
        if (args.length !== 2) throw new UsageError('usage: jit-ssh-ca user set-groups NAME a,b');
        const ended = await users.setGroups(name, splitGroups(args[1]), actor);
        if (opts.json) process.stdout.write(JSON.stringify(ended) + '\n');
        process.stderr.write(`groups of ${name}: ${splitGroups(args[1]).join(', ') || '(none)'}${endedText(ended)}\n`);
        break;
      }
    }
    return 0;
  } finally {
    await admin.close();
  }
}
