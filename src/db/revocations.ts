// Revoked certificates. A revocation lasts until the certificate's own end
// (then sshd refuses it anyway), and is only ever added (the table refuses
// UPDATE and DELETE).

import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface RevokeWhich {
  serial?: string;
  username?: string;
  /** Certificates issued for these grants (a certificate's request_id is its grant's id). */
  grantIds?: string[];
}

/** Live certificates matching `which`, with their ends. */
async function liveCertificates(db: Db, which: RevokeWhich, at: Date): Promise<Array<{ serial: string; valid_before: Date }>> {
  if (which.grantIds && which.grantIds.length === 0) return [];
  let q = db.selectFrom('certificates').select(['serial', 'valid_before']).where('valid_before', '>', at);
  if (which.serial !== undefined) q = q.where('serial', '=', which.serial);
  if (which.username !== undefined) q = q.where('username', '=', which.username);
  if (which.grantIds !== undefined) q = q.where('request_id', 'in', which.grantIds);
  return q.orderBy('serial').execute();
}

/** Revokes the live certificates matching `which` that are not revoked yet; returns their serials. */
export async function revokeLiveCertificates(trx: Transaction<Database>, which: RevokeWhich, by: { reason: string; actor: string; at: Date }): Promise<string[]> {
  const live = await liveCertificates(trx, which, by.at);
  if (live.length === 0) return [];
  const rows = live.map((c) => ({ serial: c.serial, reason: by.reason, revoked_by: by.actor, revoked_at: by.at, valid_before: c.valid_before }));
  const inserted = await trx.insertInto('revocations').values(rows).onConflict((oc) => oc.column('serial').doNothing()).returning('serial').execute();
  return inserted.map((r) => r.serial).sort();
}

/** Serials revoked and still within their validity, with the CA key that signed each: what the KRL lists. */
export async function revokedStillValid(db: Db, at: Date): Promise<Array<{ serial: string; ca_key_fingerprint: string }>> {
  return db
    .selectFrom('revocations as r')
    .innerJoin('certificates as c', 'c.serial', 'r.serial')
    .select(['r.serial', 'c.ca_key_fingerprint'])
    .where('r.valid_before', '>', at)
    .orderBy('r.serial')
    .execute();
}
