// How `jit-ssh-ca user ...` reaches the users: through the running server's
// admin socket when there is one (the embedded database admits one process),
// otherwise by opening the database itself.

import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { HEADS_FILE, readSignedHeads } from '../audit/signed-heads.js';
import type { ServerConfig } from '../config.js';
import { osActor, withLabel, type Actor } from '../core/actor.js';
import { DomainError, type ErrorCode } from '../core/errors.js';
import { createSecretBox, loadOrCreateSecretKey } from '../auth/secret-box.js';
import { migrate, openDatabase, type DbHandle } from '../db/index.js';
import { silentLogger } from '../log.js';
import { caKeyBlobs, loadCaKeys, type CaKeys } from '../main.js';
import { createAuditService, type AuditService } from '../services/audit.js';
import { createRevocationService, type Krl, type RevokeTarget } from '../services/revocation.js';
import { LABEL_HEADER } from '../http/admin-app.js';
import { socketAnswers } from '../http/admin-socket.js';
import { createUserAdmin, type UserAdmin } from '../services/users.js';
import { readPolicyFile } from '../services/policy-store.js';
import type { Policy } from '../core/policy-types.js';

/** What `jit-ssh-ca audit ...`, `revoke` and `krl` need, the same through the socket or the database. */
export interface AuditAdmin {
  certificates: AuditService['certificates'];
  events: AuditService['events'];
  verify: AuditService['verify'];
  ingestSshd: AuditService['ingestSshd'];
  report: AuditService['report'];
  caKeyUsage: AuditService['caKeyUsage'];
  chainHashes: AuditService['chainHashes'];
  exportChain(): AsyncIterable<string>;
  revoke(target: RevokeTarget, reason: string): Promise<{ revoked: string[]; ended_grants: string[] }>;
  krl(): Promise<Krl>;
}

export interface AdminSession {
  users: UserAdmin;
  audit: AuditAdmin;
  /** Who is acting, as the audit log records it (through the socket the server names the actor itself). */
  actor: Actor;
  via: 'socket' | 'database';
  close(): Promise<void>;
}

/** This process's OS user (`uid:N` when the passwd database has no name for it). */
function processActor(): string {
  const uid = process.geteuid?.() ?? -1;
  let name: string | null = null;
  try {
    name = os.userInfo().username;
  } catch {
    // A uid without a passwd entry, as in a container run with --user 4242.
  }
  return osActor(uid, name);
}

/**
 * The actor, with the person behind sudo as its label: sudo's word, which
 * the audit log keeps beside the OS user, never instead of it.
 */
export function adminActor(env: NodeJS.ProcessEnv = process.env): Actor {
  return withLabel(processActor(), env['SUDO_USER']);
}

const CODE_OF: Record<number, ErrorCode> = { 400: 'invalid_input', 403: 'forbidden', 404: 'not_found', 409: 'conflict' };

/** The label header, when there is a label: the server takes the actor from the socket itself. */
function labelHeaders(actor: Actor): Record<string, string> {
  return typeof actor === 'string' ? {} : { [LABEL_HEADER]: actor.label };
}

function socketCall(socketPath: string, actor: Actor) {
  return (method: string, path: string, body?: unknown, query?: Record<string, string | undefined>): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        { socketPath, method, path: withQuery(path, query), headers: { ...labelHeaders(actor), ...(payload ? { 'content-type': 'application/json' } : {}) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => {
            const data = text ? JSON.parse(text) : null;
            if ((res.statusCode ?? 500) >= 400) {
              reject(new DomainError(CODE_OF[res.statusCode!] ?? 'unavailable', data?.detail ?? `admin socket answered ${res.statusCode}`));
            } else resolve(data);
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

/** A streamed answer of the admin socket, chunk by chunk. */
async function* socketStream(socketPath: string, actor: Actor, path: string): AsyncGenerator<string> {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({ socketPath, method: 'GET', path, headers: labelHeaders(actor) }, resolve);
    req.on('error', reject);
    req.end();
  });
  res.setEncoding('utf8');
  if ((res.statusCode ?? 500) >= 400) {
    let text = '';
    for await (const chunk of res) text += chunk;
    const detail = (() => {
      try {
        return (JSON.parse(text) as { detail?: string }).detail;
      } catch {
        return undefined;
      }
    })();
    throw new DomainError(CODE_OF[res.statusCode!] ?? 'unavailable', detail ?? `admin socket answered ${res.statusCode}`);
  }
  for await (const chunk of res) yield chunk as string;
}

function withQuery(path: string, query: Record<string, string | undefined> | undefined): string {
  const q = new URLSearchParams(Object.entries(query ?? {}).filter((e): e is [string, string] => e[1] !== undefined));
  return q.size > 0 ? `${path}?${q}` : path;
}

function socketAudit(socketPath: string, actor: Actor): AuditAdmin {
  const call = socketCall(socketPath, actor);
  return {
    certificates: (q) => call('GET', '/admin/audit/certificates', undefined, q) as ReturnType<AuditAdmin['certificates']>,
    events: (q) => call('GET', '/admin/audit/events', undefined, q) as ReturnType<AuditAdmin['events']>,
    verify: () => call('GET', '/admin/audit/verify') as ReturnType<AuditAdmin['verify']>,
    ingestSshd: (text, host) => call('POST', '/admin/audit/sshd-log', { text, host }) as ReturnType<AuditAdmin['ingestSshd']>,
    report: (q) => call('GET', '/admin/audit/report', undefined, q) as ReturnType<AuditAdmin['report']>,
    exportChain: () => socketStream(socketPath, actor, '/admin/audit/chain'),
    chainHashes: (stream, positions) => call('POST', '/admin/audit/chain-hashes', { stream, positions }) as ReturnType<AuditAdmin['chainHashes']>,
    caKeyUsage: async () => ((await call('GET', '/admin/ca/key-usage')) as { keys: Awaited<ReturnType<AuditAdmin['caKeyUsage']>> }).keys,
    revoke: (target, reason) => call('POST', '/admin/revocations', { ...target, reason }) as ReturnType<AuditAdmin['revoke']>,
    krl: async () => {
      const k = (await call('GET', '/admin/krl')) as Omit<Krl, 'krl'> & { krl: string };
      return { ...k, krl: Buffer.from(k.krl, 'base64') };
    },
  };
}

/** The audit and revocation services over the database itself; the CA key is loaded only when a KRL is asked for. */
function directAudit(db: DbHandle['db'], config: ServerConfig, actor: Actor): AuditAdmin {
  let keys: Promise<CaKeys> | undefined;
  const caKeys = () => (keys ??= loadCaKeys({ ...config, caKeyGenerated: false }, silentLogger));
  const trusted = async () => caKeyBlobs((await caKeys()).publicKeys);
  const everTrusted = async () => caKeyBlobs([...(await caKeys()).publicKeys, ...(await caKeys()).retiredKeys]);
  const audit = createAuditService({ db });
  // The heads the instance using this data directory signed, when it is one (see audit/signed-heads.ts).
  const signedHeads = () => readSignedHeads(path.join(config.dataDir, HEADS_FILE));
  return {
    certificates: (q) => audit.certificates(q),
    events: (q) => audit.events(q),
    verify: async () => createAuditService({ db, trustedKeys: [...(await everTrusted()).values()], signedHeads }).verify(),
    chainHashes: (stream, positions) => audit.chainHashes(stream, positions),
    ingestSshd: (text, host) => audit.ingestSshd(text, host),
    report: (q) => audit.report(q),
    caKeyUsage: () => audit.caKeyUsage(),
    exportChain: () => audit.exportChain(),
    revoke: async (target, reason) => createRevocationService({ db, signer: (await caKeys()).signer, caKeys: await trusted() }).revoke(target, reason, actor),
    krl: async () => createRevocationService({ db, signer: (await caKeys()).signer, caKeys: await trusted() }).krl(),
  };
}

function socketUsers(socketPath: string, actor: Actor): UserAdmin {
  const call = socketCall(socketPath, actor);
  const at = (name: string, op: string) => `/admin/users/${encodeURIComponent(name)}/${op}`;
  return {
    add: (input) => call('POST', '/admin/users', input) as ReturnType<UserAdmin['add']>,
    list: async () => ((await call('GET', '/admin/users')) as { users: Awaited<ReturnType<UserAdmin['list']>> }).users,
    disable: (name) => call('POST', at(name, 'disable')) as ReturnType<UserAdmin['disable']>,
    enable: async (name) => void (await call('POST', at(name, 'enable'))),
    resetMfa: (name) => call('POST', at(name, 'reset-mfa')) as ReturnType<UserAdmin['resetMfa']>,
    setPassword: async (name, password) => void (await call('POST', at(name, 'password'), { password })),
    setGroups: (name, groups) => call('POST', at(name, 'groups'), { groups }) as ReturnType<UserAdmin['setGroups']>,
  };
}

/** The policy file's policy, when it reads and checks; a broken file must not stop user administration. */
async function policyIfReadable(path: string): Promise<(() => Policy) | undefined> {
  const policy = await readPolicyFile(path).catch(() => undefined);
  return policy && (() => policy);
}

export async function openAdmin(config: ServerConfig): Promise<AdminSession> {
  const actor = adminActor();
  if (await socketAnswers(config.adminSocket)) {
    return { users: socketUsers(config.adminSocket, actor), audit: socketAudit(config.adminSocket, actor), actor, via: 'socket', close: async () => {} };
  }
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(database.db);
    const box = createSecretBox(config.secretKey ?? (await loadOrCreateSecretKey(config.dataDir)));
    return {
      users: createUserAdmin({ db: database.db, box, passwordCost: config.auth.passwordCost, policy: await policyIfReadable(config.policyPath) }),
      audit: directAudit(database.db, config, actor),
      actor,
      via: 'database',
      close: () => database.close(),
    };
  } catch (e) {
    await database.close();
    throw e;
  }
}
