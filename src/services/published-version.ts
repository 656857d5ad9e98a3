// What the signed documents servers fetch (the CA key list, the KRL) share:
// a version that only ever increases, kept in the database so that every
// instance and every restart agree on it, and a signing time that moves on by
// itself, so that a server can tell a current document from a replayed one.

import type { Kysely } from 'kysely';
import { publishDigest, readVersion, type VersionTable } from '../db/published-versions.js';
import type { Database } from '../db/schema.js';

/**
 * How often the documents are signed afresh. Every instance signs for the
 * start of the same period (clocks agreeing to well within it), so a body
 * and its signature fetched from two instances in one period still match;
 * a server therefore holds a document at most this old after a refresh.
 */
export const SIGNING_PERIOD_MS = 60_000;

export interface PublishedVersion {
  /** Decimal, unsigned 64-bit. */
  version: string;
  /** When this version was first published. */
  since: Date;
}

/**
 * The version of the document whose content hashes to `digest`: the same as
 * before when the content is the same, one more when it changed. One
 * statement decides, so instances that publish at once cannot both take the
 * same version for different content; the common case (nothing changed) only reads.
 */
export async function publishedVersion(db: Kysely<Database>, table: VersionTable, digest: string, at: Date): Promise<PublishedVersion> {
  const current = await readVersion(db, table);
  if (current && current.digest === digest) return { version: current.version, since: current.generated_at };
  const published = await publishDigest(db, table, digest, at);
  return { version: published.version, since: published.generated_at };
}

/**
 * The signing time of a document published `since`, signed at `at`: the start
 * of the current signing period, in whole seconds (a KRL's generated_date has
 * no finer unit), never before the content itself existed.
 */
export function signingTime(at: Date, since: Date, periodMs = SIGNING_PERIOD_MS): Date {
  const periodStart = Math.floor(at.getTime() / periodMs) * periodMs;
  return new Date(Math.max(periodStart, Math.floor(since.getTime() / 1000) * 1000));
}
