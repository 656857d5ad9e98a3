// People and their credentials.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, UserRow } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface NewUser {
  name: string;
  groups: string[];
  passwordHash: string;
  sealedTotpSecret: string;
}

export async function insertUser(db: Db, u: NewUser, now: Date): Promise<void> {
  await db
    .insertInto('users')
    .values({ name: u.name, groups: u.groups, password_hash: u.passwordHash, totp_secret: u.sealedTotpSecret, created_at: now, updated_at: now })
    .execute();
}

export async function findUser(db: Db, name: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function listUsers(db: Db): Promise<UserRow[]> {
  return db.selectFrom('users').selectAll().orderBy('name').execute();
}

export interface UserPatch {
  groups?: string[];
  passwordHash?: string;
  sealedTotpSecret?: string;
  resetTotpStep?: boolean;
  enabled?: boolean;
  lastLoginAt?: Date;
}

/** Applies a change; false when there is no such user. */
export async function updateUser(db: Db, name: string, patch: UserPatch, now: Date): Promise<boolean> {
  const res = await db
    .updateTable('users')
    .set({
      ...(patch.groups ? { groups: patch.groups } : {}),
      ...(patch.passwordHash ? { password_hash: patch.passwordHash } : {}),
      ...(patch.sealedTotpSecret ? { totp_secret: patch.sealedTotpSecret } : {}),
      ...(patch.resetTotpStep ? { totp_last_step: null } : {}),
      ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
      ...(patch.lastLoginAt ? { last_login_at: patch.lastLoginAt } : {}),
      updated_at: now,
    })
    .where('name', '=', name)
    .executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

/**
 * Records `step` as the user's last accepted TOTP time-step, only if it is
 * newer than any accepted before. One conditional UPDATE: of two instances
 * racing with the same code, exactly one succeeds.
 */
export async function consumeTotpStep(db: Db, name: string, step: number): Promise<boolean> {
  const res = await db
    .updateTable('users')
    .set({ totp_last_step: String(step) })
    .where('name', '=', name)
    .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', sql<string>`${String(step)}::bigint`)]))
    .executeTakeFirst();
  return res.numUpdatedRows === 1n;
}
