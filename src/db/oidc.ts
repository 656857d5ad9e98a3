// Identities from OpenID Connect issuers, and sign-ins in flight.

import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface Identity {
  issuer: string;
  subject: string;
  username: string;
  issuerId: string;
  idpGroups: string[];
  groupsAt: Date;
}

const asIdentity = (r: { issuer: string; subject: string; username: string; issuer_id: string; idp_groups: string[]; groups_at: Date }): Identity => ({
  issuer: r.issuer,
  subject: r.subject,
  username: r.username,
  issuerId: r.issuer_id,
  idpGroups: r.idp_groups,
  groupsAt: r.groups_at,
});

/** The user an issuer's subject is, locked for the sign-in that updates it. */
export async function findIdentity(db: Db, issuer: string, subject: string, forUpdate = false): Promise<Identity | undefined> {
  let q = db.selectFrom('oidc_identities').selectAll().where('issuer', '=', issuer).where('subject', '=', subject);
  if (forUpdate) q = q.forUpdate();
  const r = await q.executeTakeFirst();
  return r && asIdentity(r);
}

export async function findIdentityOfUser(db: Db, username: string): Promise<Identity | undefined> {
  const r = await db.selectFrom('oidc_identities').selectAll().where('username', '=', username).executeTakeFirst();
  return r && asIdentity(r);
}

export async function insertIdentity(db: Db, i: Identity, now: Date): Promise<void> {
  await db
    .insertInto('oidc_identities')
    .values({ issuer: i.issuer, subject: i.subject, username: i.username, issuer_id: i.issuerId, idp_groups: i.idpGroups, groups_at: i.groupsAt, created_at: now })
    .execute();
}

export async function updateIdentityGroups(db: Db, issuer: string, subject: string, idpGroups: string[], at: Date): Promise<void> {
  await db.updateTable('oidc_identities').set({ idp_groups: idpGroups, groups_at: at }).where('issuer', '=', issuer).where('subject', '=', subject).execute();
}

// ---- Sign-ins in flight ----

export type FlowKind = 'auth' | 'code' | 'device';

export async function insertFlow(db: Db, f: { keyHash: Buffer; kind: FlowKind; data: unknown; now: Date; expiresAt: Date }): Promise<void> {
  await db.insertInto('oidc_flows').values({ key_hash: f.keyHash, kind: f.kind, data: JSON.stringify(f.data), created_at: f.now, expires_at: f.expiresAt }).execute();
}

/** Deletes and returns a live flow: a handle serves once, whoever races for it. */
export async function takeFlow(db: Db, keyHash: Buffer, kind: FlowKind, now: Date): Promise<unknown | undefined> {
  const r = await db.deleteFrom('oidc_flows').where('key_hash', '=', keyHash).where('kind', '=', kind).returning(['data', 'expires_at']).executeTakeFirst();
  return r && r.expires_at > now ? r.data : undefined;
}

export async function readFlow(db: Db, keyHash: Buffer, kind: FlowKind, now: Date): Promise<unknown | undefined> {
  const r = await db.selectFrom('oidc_flows').select(['data']).where('key_hash', '=', keyHash).where('kind', '=', kind).where('expires_at', '>', now).executeTakeFirst();
  return r?.data;
}

export async function updateFlow(db: Db, keyHash: Buffer, data: unknown): Promise<void> {
  await db.updateTable('oidc_flows').set({ data: JSON.stringify(data) }).where('key_hash', '=', keyHash).execute();
}

export async function pruneFlows(db: Db, now: Date): Promise<number> {
  const r = await db.deleteFrom('oidc_flows').where('expires_at', '<', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}
