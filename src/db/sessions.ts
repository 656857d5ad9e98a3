// Login sessions, found by the hash of their bearer token.

import type { Kysely, Transaction } from 'kysely';
import { asSessionAuth, type SessionAuth } from '../core/auth-method.js';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface SessionUser {
  username: string;
  groups: string[];
  expiresAt: Date;
  auth: SessionAuth;
  /** For a user of an identity provider: which one (its configured id) and when it last sent the groups. */
  groupsFrom?: { issuerId: string; at: Date };
}

export async function insertSession(db: Db, s: { tokenHash: Buffer; username: string; createdAt: Date; expiresAt: Date; clientAddress: string | null; auth: SessionAuth }): Promise<void> {
  await db
    .insertInto('sessions')
    .values({ token_hash: s.tokenHash, username: s.username, created_at: s.createdAt, expires_at: s.expiresAt, client_address: s.clientAddress, auth: JSON.stringify(s.auth) })
    .execute();
}

/**
 * The live sessions among `tokenHashes` (live, and their user enabled; checked on every request),
 * by the hex of their hash: one statement for many requests.
 */
export async function findLiveSessions(db: Db, tokenHashes: Buffer[], now: Date): Promise<Map<string, SessionUser>> {
  const rows = await db
    .selectFrom('sessions')
    .innerJoin('users', 'users.name', 'sessions.username')
    .leftJoin('oidc_identities', 'oidc_identities.username', 'users.name')
    .select(['sessions.token_hash', 'users.name', 'users.groups', 'sessions.expires_at', 'sessions.auth', 'oidc_identities.issuer_id', 'oidc_identities.groups_at'])
    .where('sessions.token_hash', 'in', tokenHashes)
    .where('sessions.revoked_at', 'is', null)
    .where('sessions.expires_at', '>', now)
    .where('users.enabled', '=', true)
    .execute();
  return new Map(
    rows.map((r) => [
      Buffer.from(r.token_hash).toString('hex'),
      { username: r.name, groups: r.groups, expiresAt: r.expires_at, auth: asSessionAuth(r.auth), ...(r.issuer_id && r.groups_at ? { groupsFrom: { issuerId: r.issuer_id, at: r.groups_at } } : {}) },
    ]),
  );
}

export async function revokeSession(db: Db, tokenHash: Buffer, now: Date): Promise<boolean> {
  const res = await db.updateTable('sessions').set({ revoked_at: now }).where('token_hash', '=', tokenHash).where('revoked_at', 'is', null).executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

export async function revokeUserSessions(db: Db, username: string, now: Date): Promise<number> {
  const res = await db.updateTable('sessions').set({ revoked_at: now }).where('username', '=', username).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/** Removes sessions that ended more than `keepSeconds` ago. */
export async function pruneSessions(db: Db, now: Date, keepSeconds: number): Promise<number> {
  const cutoff = new Date(now.getTime() - keepSeconds * 1000);
  const res = await db.deleteFrom('sessions').where('expires_at', '<', cutoff).executeTakeFirst();
  return Number(res.numDeletedRows);
}
