// How `jit-ssh-ca user ...`, `audit ...`, `revoke` and `krl` reach the
// services: through the running server's admin socket when there is one (the
// embedded database admits one process), with a client typed from the admin
// app's own route table; otherwise by opening the database and building the
// services as the server does (createServices).

import os from 'node:os';
import path from 'node:path';
import { hc } from 'hono/client';
import { HEADS_FILE, readSignedHeads } from '../audit/signed-heads.js';
import { createSecretBox, loadOrCreateSecretKey } from '../auth/secret-box.js';
import type { ServerConfig } from '../config.js';
import { osActor, withLabel, type Actor } from '../core/actor.js';
import type { Policy } from '../core/policy-types.js';
import { migrate, openDatabase } from '../db/index.js';
import { LABEL_HEADER, type AdminApp } from '../http/admin-app.js';
import { socketAnswers } from '../http/admin-socket.js';
import { silentLogger } from '../log.js';
import type { AuditService } from '../services/audit.js';
import { loadCaKeys, loadHostCaKeys } from '../services/ca-signer.js';
import type { HostService } from '../services/hosts.js';
import { createServices, type Services, type ServicesContext } from '../services/index.js';
import { readPolicyFile } from '../services/policy-store.js';
import type { Krl, RevokeTarget } from '../services/revocation.js';
import type { UserAdmin } from '../services/users.js';
import { answered, socketFetch, streamed } from './admin-socket-fetch.js';

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

/** What `jit-ssh-ca host sign|token` need (the actor is the session's). */
export interface HostAdmin {
  sign(input: { publicKey: string; names: string[]; ttl?: number }): ReturnType<HostService['sign']>;
  createToken(input: { names: string[]; ttl?: number }): ReturnType<HostService['createToken']>;
}

export interface AdminSession {
  users: UserAdmin;
  hosts: HostAdmin;
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

/** The admin app's routes over the socket; the label header, when there is a label (the server takes the actor from the socket itself). */
function adminClient(socketPath: string, actor: Actor) {
  return hc<AdminApp>('http://admin.sock', { fetch: socketFetch(socketPath), headers: typeof actor === 'string' ? {} : { [LABEL_HEADER]: actor.label } });
}

function socketAudit(socketPath: string, actor: Actor): AuditAdmin {
  const { admin } = adminClient(socketPath, actor);
  return {
    certificates: async (query) => answered(await admin.audit.certificates.$get({ query })),
    events: async (query) => answered(await admin.audit.events.$get({ query })),
    verify: async () => answered(await admin.audit.verify.$get()),
    ingestSshd: async (text, host) => answered(await admin.audit['sshd-log'].$post({ json: { text, host } })),
    report: async (query) => answered(await admin.audit.report.$get({ query })),
    exportChain: () => streamed(() => admin.audit.chain.$get()),
    chainHashes: async (stream, positions) => answered(await admin.audit['chain-hashes'].$post({ json: { stream, positions } })),
    caKeyUsage: async () => (await answered(await admin.ca['key-usage'].$get())).keys,
    revoke: async (target, reason) => answered(await admin.revocations.$post({ json: { serial: target.serial, user: target.user, request: target.request, reason } })),
    krl: async () => {
      const k = await answered(await admin.krl.$get());
      return { ...k, krl: Buffer.from(k.krl, 'base64') };
    },
  };
}

function socketHosts(socketPath: string, actor: Actor): HostAdmin {
  const { hosts } = adminClient(socketPath, actor).admin;
  return {
    sign: async (input) => answered(await hosts.certificates.$post({ json: { public_key: input.publicKey, names: input.names, ttl: input.ttl } })),
    createToken: async (input) => answered(await hosts.tokens.$post({ json: { names: input.names, ttl: input.ttl } })),
  };
}

function socketUsers(socketPath: string, actor: Actor): UserAdmin {
  const { users } = adminClient(socketPath, actor).admin;
  const user = (name: string) => users[':name'];
  const param = (name: string) => ({ name: encodeURIComponent(name) });
  return {
    add: async (input) => answered(await users.$post({ json: input })),
    list: async () => (await answered(await users.$get())).users,
    disable: async (name) => answered(await user(name).disable.$post({ param: param(name) })),
    enable: async (name) => void (await answered(await user(name).enable.$post({ param: param(name) }), false)),
    resetMfa: async (name) => answered(await user(name)['reset-mfa'].$post({ param: param(name) })),
    setPassword: async (name, password) => void (await answered(await user(name).password.$post({ param: param(name), json: { password } }), false)),
    setGroups: async (name, groups) => answered(await user(name).groups.$post({ param: param(name), json: { groups } })),
  };
}

/** The policy file's policy, when it reads and checks; a broken file must not stop user administration. */
async function policyIfReadable(path: string): Promise<(() => Policy) | undefined> {
  const policy = await readPolicyFile(path).catch(() => undefined);
  return policy && (() => policy);
}

/** The services over the database itself; the CA key is loaded only when a KRL, a revocation or a verification asks for it. */
async function directAdmin(config: ServerConfig, actor: Actor): Promise<AdminSession> {
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(database.db);
    const ctx: ServicesContext = {
      box: createSecretBox(config.secretKey ?? (await loadOrCreateSecretKey(config.dataDir))),
      policy: await policyIfReadable(config.policyPath),
      logger: silentLogger,
      // The heads the instance using this data directory signed, when it is one (see audit/signed-heads.ts).
      signedHeads: () => readSignedHeads(path.join(config.dataDir, HEADS_FILE)),
    };
    const { users, audit } = createServices(config, database.db, null, ctx);
    let keyed: Promise<Services> | undefined;
    const withKeys = () => (keyed ??= loadCaKeys({ ...config, caKeyGenerated: false }, silentLogger).then((keys) => createServices(config, database.db, keys, ctx)));
    // The host CA key (and the CA key, to be sure they differ) is made on first use at its
    // default path, as the server's first start would.
    const withHostKeys = async () => {
      const keys = await loadCaKeys(config, silentLogger);
      const hostKeys = await loadHostCaKeys(config, silentLogger, keys.signer);
      return createServices(config, database.db, keys, { ...ctx, hostKeys }).hosts;
    };
    return {
      users,
      hosts: {
        sign: async (input) => (await withHostKeys()).sign(input, actor),
        createToken: async (input) => (await withHostKeys()).createToken(input, actor),
      },
      audit: {
        certificates: audit.certificates,
        events: audit.events,
        verify: async () => (await withKeys()).audit.verify(),
        chainHashes: audit.chainHashes,
        ingestSshd: audit.ingestSshd,
        report: audit.report,
        caKeyUsage: audit.caKeyUsage,
        exportChain: audit.exportChain,
        revoke: async (target, reason) => (await withKeys()).revocation.revoke(target, reason, actor),
        krl: async () => (await withKeys()).revocation.krl(),
      },
      actor,
      via: 'database',
      close: () => database.close(),
    };
  } catch (e) {
    await database.close();
    throw e;
  }
}

export async function openAdmin(config: ServerConfig): Promise<AdminSession> {
  const actor = adminActor();
  if (await socketAnswers(config.adminSocket)) {
    return { users: socketUsers(config.adminSocket, actor), hosts: socketHosts(config.adminSocket, actor), audit: socketAudit(config.adminSocket, actor), actor, via: 'socket', close: async () => {} };
  }
  return directAdmin(config, actor);
}
