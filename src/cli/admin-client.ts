// How `jit-ssh-ca user ...` reaches the users: through the running server's
// admin socket when there is one (the embedded database admits one process),
// otherwise by opening the database itself.

import http from 'node:http';
import os from 'node:os';
import type { ServerConfig } from '../config.js';
import { DomainError, type ErrorCode } from '../core/errors.js';
import { createSecretBox, loadOrCreateSecretKey } from '../auth/secret-box.js';
import { migrate, openDatabase } from '../db/index.js';
import { ACTOR_HEADER } from '../http/admin-app.js';
import { socketAnswers } from '../http/admin-socket.js';
import { createUserAdmin, type UserAdmin } from '../services/users.js';

export interface AdminSession {
  users: UserAdmin;
  /** Who is acting, as the audit log records it. */
  actor: string;
  via: 'socket' | 'database';
  close(): Promise<void>;
}

export function osActor(): string {
  return `os:${os.userInfo().username.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64)}`;
}

const CODE_OF: Record<number, ErrorCode> = { 400: 'invalid_input', 404: 'not_found', 409: 'conflict' };

function socketCall(socketPath: string, actor: string) {
  return (method: string, path: string, body?: unknown): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        { socketPath, method, path, headers: { [ACTOR_HEADER]: actor, ...(payload ? { 'content-type': 'application/json' } : {}) } },
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

function socketUsers(socketPath: string, actor: string): UserAdmin {
  const call = socketCall(socketPath, actor);
  const at = (name: string, op: string) => `/admin/users/${encodeURIComponent(name)}/${op}`;
  return {
    add: (input) => call('POST', '/admin/users', input) as ReturnType<UserAdmin['add']>,
    list: async () => ((await call('GET', '/admin/users')) as { users: Awaited<ReturnType<UserAdmin['list']>> }).users,
    disable: async (name) => void (await call('POST', at(name, 'disable'))),
    enable: async (name) => void (await call('POST', at(name, 'enable'))),
    resetMfa: (name) => call('POST', at(name, 'reset-mfa')) as ReturnType<UserAdmin['resetMfa']>,
    setPassword: async (name, password) => void (await call('POST', at(name, 'password'), { password })),
    setGroups: async (name, groups) => void (await call('POST', at(name, 'groups'), { groups })),
  };
}

export async function openAdmin(config: ServerConfig): Promise<AdminSession> {
  const actor = osActor();
  if (await socketAnswers(config.adminSocket)) {
    return { users: socketUsers(config.adminSocket, actor), actor, via: 'socket', close: async () => {} };
  }
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(database.db);
    const box = createSecretBox(config.secretKey ?? (await loadOrCreateSecretKey(config.dataDir)));
    return { users: createUserAdmin({ db: database.db, box, passwordCost: config.auth.passwordCost }), actor, via: 'database', close: () => database.close() };
  } catch (e) {
    await database.close();
    throw e;
  }
}
