// Certificate logins seen in sshd logs (audit/usage.ts reads the logs):
// certificate_logins keeps each login once, certificate_usage sums them per
// certificate, host, source address and login name.

import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** The serials among `serials` (decimal, each below 2^63) that this CA issued. */
export async function issuedSerials(db: Db, serials: string[]): Promise<Set<string>> {
  if (serials.length === 0) return new Set();
  return new Set((await db.selectFrom('certificates').select('serial').where('serial', 'in', serials).execute()).map((r) => r.serial));
}

export interface CertificateLogin {
  serial: string;
  host: string;
  source: string;
  port: number;
  login: string;
  at: Date;
}

/** Records logins by issued certificates; returns how many were new (a login already recorded adds nothing to the sums). */
export async function recordLogins(db: Db, logins: CertificateLogin[]): Promise<number> {
  if (logins.length === 0) return 0;
  const values = sql.join(logins.map((s) => sql`(${s.serial}::bigint, ${s.host}, ${s.source}, ${s.port}::integer, ${s.login}, ${s.at.toISOString()}::timestamptz)`));
  // Only logins not seen before add to the summary, in the same statement.
  const { rows } = await sql<{ added: string }>`
    with seen (serial, host, source_address, port, login, at) as (values ${values}),
    fresh as (
      insert into certificate_logins (serial, host, source_address, port, login, at)
      select distinct on (serial, host, source_address, port) * from seen
      on conflict do nothing
      returning *
    ),
    summed as (
      insert into certificate_usage as u (serial, host, source_address, login, first_seen, last_seen, logins)
      select serial, host, source_address, login, min(at), max(at), count(*) from fresh group by serial, host, source_address, login
      on conflict (serial, host, source_address, login) do update set
        first_seen = least(u.first_seen, excluded.first_seen),
        last_seen = greatest(u.last_seen, excluded.last_seen),
        logins = u.logins + excluded.logins
      returning 1
    )
    select count(*)::text as added from fresh`.execute(db);
  return Number(rows[0]!.added);
}

export interface CertificateRefusal {
  serial: string;
  host: string;
  reason: string;
  keyId: string;
  at: Date | null;
}

/** Records refusals of issued certificates; returns how many were new (one already recorded adds nothing). */
export async function recordRefusals(db: Db, refusals: CertificateRefusal[], now: Date): Promise<number> {
  if (refusals.length === 0) return 0;
  const values = sql.join(refusals.map((r) => sql`(${r.serial}::bigint, ${r.host}, ${r.reason}, ${r.keyId}, ${r.at?.toISOString() ?? null}::timestamptz, ${now.toISOString()}::timestamptz)`));
  const { rows } = await sql<{ added: string }>`
    with fresh as (
      insert into certificate_refusals (serial, host, reason, key_id, at, recorded_at)
      select distinct on (serial, host, reason, coalesce(at, '-infinity'::timestamptz)) * from (values ${values}) as seen (serial, host, reason, key_id, at, recorded_at)
      on conflict do nothing
      returning 1
    )
    select count(*)::text as added from fresh`.execute(db);
  return Number(rows[0]!.added);
}
