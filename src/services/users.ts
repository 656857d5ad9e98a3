// Administration of people: the same operations whether they arrive over the
// local admin socket or run against the database directly. Each change and
// its audit event are written in one transaction, naming who did it.

import type { Kysely, Transaction } from 'kysely';
import type { Actor } from '../core/actor.js';
import { DomainError } from '../core/errors.js';
import { validGroupName, validUserName } from '../core/names.js';
import { hashPassword, passwordProblem } from '../auth/password.js';
import type { SecretBox } from '../auth/secret-box.js';
import { enrollmentUri, newTotpSecret } from '../auth/totp.js';
import { appendEvent } from '../db/audit-events.js';
import { isUniqueViolation } from '../db/errors.js';
import type { Database, GrantRow, UserRow } from '../db/schema.js';
import { lockLiveGrants } from '../db/requests.js';
import { holdRefusal } from '../core/grant.js';
import type { Policy } from '../core/policy-types.js';
import { endGrants, type EndedGrants } from './grant-end.js';
import { revokeUserSessions } from '../db/sessions.js';
import { findUser, insertUser, listUsers, updateUser, type UserPatch } from '../db/users.js';
import { deleteCredentialsOf } from '../db/webauthn.js';
import { totpContext } from './auth.js';

export interface UserView {
  name: string;
  groups: string[];
  enabled: boolean;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export interface Enrollment {
  name: string;
  groups: string[];
  /** `otpauth://totp/jit-ssh:NAME?secret=...&issuer=jit-ssh`, shown once. */
  otpauth_uri: string;
}

/** What the `jit-ssh-ca user` commands need; implemented locally and over the admin socket. */
export interface UserAdmin {
  add(input: { name: string; groups: string[]; password: string }, actor: Actor): Promise<Enrollment>;
  list(): Promise<UserView[]>;
  /** Disables a user: their sessions end, their live grants end and those grants' certificates are revoked. */
  disable(name: string, actor: Actor): Promise<EndedGrants>;
  enable(name: string, actor: Actor): Promise<void>;
  resetMfa(name: string, actor: Actor): Promise<Enrollment>;
  setPassword(name: string, password: string, actor: Actor): Promise<void>;
  /** Sets a user's groups; live grants the new groups no longer allow end (their certificates revoked). */
  setGroups(name: string, groups: string[], actor: Actor): Promise<EndedGrants>;
}

export interface UserAdminDeps {
  db: Kysely<Database>;
  box: SecretBox;
  passwordCost: number;
  /** The policy in force: with it, a change of groups ends the grants they no longer allow. */
  policy?: () => Policy;
  now?: () => Date;
}

function view(u: UserRow): UserView {
  return {
    name: u.name,
    groups: u.groups,
    enabled: u.enabled,
    created_at: u.created_at.toISOString(),
    updated_at: u.updated_at.toISOString(),
    last_login_at: u.last_login_at?.toISOString() ?? null,
  };
}

function checkName(name: unknown): string {
  if (!validUserName(name)) throw new DomainError('invalid_input', `invalid user name ${JSON.stringify(name)}: use lower-case letters, digits, _ . - (at most 64)`);
  return name;
}

function checkGroups(groups: unknown): string[] {
  if (!Array.isArray(groups)) throw new DomainError('invalid_input', 'groups must be a list');
  for (const g of groups) if (!validGroupName(g)) throw new DomainError('invalid_input', `invalid group name ${JSON.stringify(g)}`);
  return [...new Set(groups as string[])].sort();
}

function checkPassword(password: unknown): string {
  const problem = passwordProblem(password as string);
  if (problem) throw new DomainError('invalid_input', problem);
  return password as string;
}

export function createUserAdmin(deps: UserAdminDeps): UserAdmin {
  const { db, box } = deps;
  const now = deps.now ?? (() => new Date());

  /**
   * Changes a user and records it; `revoke` also ends their sessions at once. `grants`
   * picks, among the user's live grants (locked), those that end with the change.
   */
  async function change(name: string, actor: Actor, action: string, patch: UserPatch, revoke: boolean, details: Record<string, unknown> = {}, grants?: { reason: string; ends: (g: GrantRow, u: UserRow) => boolean }, also?: (trx: Transaction<Database>) => Promise<Record<string, unknown>>): Promise<EndedGrants> {
    checkName(name);
    const at = now();
    return db.transaction().execute(async (trx) => {
      if (!(await updateUser(trx, name, patch, at))) throw new DomainError('not_found', `no user ${name}`);
      const revoked = revoke ? await revokeUserSessions(trx, name, at) : 0;
      const more = also ? await also(trx) : {};
      await appendEvent(trx, { at, actor, action, target: name, outcome: 'ok', clientAddress: null, details: { ...details, ...more, ...(revoke ? { sessions_revoked: revoked } : {}) } });
      if (!grants) return { ended_grants: [], revoked: [] };
      const u = (await findUser(trx, name))!;
      const ending = (await lockLiveGrants(trx, at, { username: name })).filter((g) => grants.ends(g, u));
      return endGrants(trx, ending, { at, actor, reason: grants.reason, cause: action });
    });
  }

  return {
    async add(input, actor) {
      const name = checkName(input.name);
      const groups = checkGroups(input.groups);
      const password = checkPassword(input.password);
      const secret = newTotpSecret();
      const at = now();
      const passwordHash = await hashPassword(password, deps.passwordCost);
      try {
        await db.transaction().execute(async (trx) => {
          await insertUser(trx, { name, groups, passwordHash, sealedTotpSecret: box.seal(secret, totpContext(name)) }, at);
          await appendEvent(trx, { at, actor, action: 'user.add', target: name, outcome: 'ok', clientAddress: null, details: { groups } });
        });
      } catch (e) {
        if (isUniqueViolation(e, 'users_pkey')) throw new DomainError('conflict', `user ${name} already exists`);
        throw e;
      }
      return { name, groups, otpauth_uri: enrollmentUri(name, secret) };
    },

    async list() {
      return (await listUsers(db)).map(view);
    },

    disable: (name, actor) => change(name, actor, 'user.disable', { enabled: false }, true, {}, { reason: `${name} was disabled`, ends: () => true }),
    enable: async (name, actor) => void (await change(name, actor, 'user.enable', { enabled: true }, false)),

    async resetMfa(name, actor) {
      checkName(name);
      const secret = newTotpSecret();
      // The old device may be lost: its codes stop working, its sessions end, and the person's passkeys are removed.
      await change(name, actor, 'user.reset_mfa', { sealedTotpSecret: box.seal(secret, totpContext(name)), resetTotpStep: true }, true, {}, undefined, async (trx) => ({ passkeys_removed: await deleteCredentialsOf(trx, name) }));
      const u = await findUser(db, name);
      return { name, groups: u?.groups ?? [], otpauth_uri: enrollmentUri(name, secret) };
    },

    async setPassword(name, password, actor) {
      const hash = await hashPassword(checkPassword(password), deps.passwordCost);
      await change(name, actor, 'user.set_password', { passwordHash: hash }, true);
    },

    async setGroups(name, groups, actor) {
      const clean = checkGroups(groups);
      const policy = deps.policy?.();
      // Without the policy (a command run with no server), the server's periodic check ends them.
      const ends = (g: GrantRow, u: UserRow) => !!policy && holdRefusal(policy.roles.get(g.role), g.role, { name: u.name, groups: u.groups, enabled: u.enabled }, g.break_glass) !== null;
      return change(name, actor, 'user.set_groups', { groups: clean }, false, { groups: clean }, { reason: `${name} left the groups the role needs`, ends });
    },
  };
}
