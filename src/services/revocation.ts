// Emergency revocation (a stolen laptop): certificates end on their own, so
// a revocation only needs to last until the certificate's own end. The KRL
// lists revoked serials still within their validity, per CA key, and its
// version increases whenever that list changes.

import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { actorName, type Actor } from '../core/actor.js';
import { DomainError } from '../core/errors.js';
import { appendEvent } from '../db/audit-events.js';
import type { Database } from '../db/schema.js';
import { encodeKrl } from '../ssh/krl.js';
import { sshsign } from '../ssh/sshsig.js';
import type { Signer } from '../ssh/signer.js';

export const KRL_NAMESPACE = 'jit-ssh-krl';

export interface RevokeTarget {
  serial?: string;
  user?: string;
  request?: string;
}

export interface Krl {
  version: string;
  generated_at: string;
  revoked: number;
  krl: Buffer;
  signature: string;
}

export interface RevocationService {
  revoke(target: RevokeTarget, reason: string, actor: Actor): Promise<{ revoked: string[] }>;
  krl(): Promise<Krl>;
}

export interface RevocationDeps {
  db: Kysely<Database>;
  signer: Signer;
  /** CA public key blobs by fingerprint: the current signer and older keys servers still trust. */
  caKeys: ReadonlyMap<string, Buffer>;
  now?: () => Date;
}

export function createRevocationService(deps: RevocationDeps): RevocationService {
  const now = deps.now ?? (() => new Date());
  let cached: { version: string; digest: string; krl: Krl } | undefined;
  return {
    async revoke(target, reason, actor) {
      const given = [target.serial, target.user, target.request].filter((v) => v !== undefined && v !== '');
      if (given.length !== 1) throw new DomainError('invalid_input', 'name exactly one of: a serial, --user or --request');
      if (typeof reason !== 'string' || reason.trim().length < 3) throw new DomainError('invalid_input', '--reason is required');
      if (target.serial !== undefined && !/^\d{1,20}$/.test(target.serial)) throw new DomainError('invalid_input', 'serial must be a decimal number');
      const at = now();
      return deps.db.transaction().execute(async (trx) => {
        let q = trx.selectFrom('certificates').select(['serial', 'valid_before']).where('valid_before', '>', at);
        if (target.serial) q = q.where('serial', '=', target.serial);
        if (target.user) q = q.where('username', '=', target.user);
        if (target.request) q = q.where('request_id', '=', target.request);
        const live = await q.execute();
        if (target.serial && live.length === 0) {
          const any = await trx.selectFrom('certificates').select('serial').where('serial', '=', target.serial).executeTakeFirst();
          throw new DomainError(any ? 'conflict' : 'not_found', any ? `certificate ${target.serial} has already expired: nothing to revoke` : `no certificate with serial ${target.serial}`);
        }
        const rows = live.map((c) => ({ serial: c.serial, reason, revoked_by: actorName(actor), revoked_at: at, valid_before: c.valid_before }));
        const inserted = rows.length === 0 ? [] : await trx.insertInto('revocations').values(rows).onConflict((oc) => oc.column('serial').doNothing()).returning('serial').execute();
        const revoked = inserted.map((r) => r.serial);
        await appendEvent(trx, { at, actor, action: 'certificate.revoke', target: target.serial ?? target.user ?? target.request ?? null, outcome: 'ok', clientAddress: null, details: { reason, serials: revoked, ...target } });
        return { revoked };
      });
    },

    async krl() {
      const at = now();
      const rows = await deps.db
        .selectFrom('revocations as r')
        .innerJoin('certificates as c', 'c.serial', 'r.serial')
        .select(['r.serial', 'c.ca_key_fingerprint'])
        .where('r.valid_before', '>', at)
        .orderBy('r.serial')
        .execute();
      const digest = createHash('sha256').update(rows.map((r) => `${r.ca_key_fingerprint} ${r.serial}\n`).join('')).digest('hex');
      // The version moves only when the list changes, in one statement every instance agrees on.
      const { rows: state } = await sql<{ version: string; generated_at: Date }>`
        insert into krl_state as k (id, version, digest, generated_at) values (1, 1, ${digest}, ${at})
        on conflict (id) do update set
          version = case when k.digest = ${digest} then k.version else k.version + 1 end,
          generated_at = case when k.digest = ${digest} then k.generated_at else ${at} end,
          digest = ${digest}
        returning version, generated_at`.execute(deps.db);
      const { version, generated_at } = state[0]!;
      if (cached && cached.version === String(version) && cached.digest === digest) return cached.krl;
      const byCa = new Map<string, bigint[]>();
      for (const r of rows) byCa.set(r.ca_key_fingerprint, [...(byCa.get(r.ca_key_fingerprint) ?? []), BigInt(r.serial)]);
      // Certificates of a CA key servers no longer trust (retired in a rotation) are refused
      // anyway; a KRL section needs the key itself, so they are left out.
      const revoked = [...byCa].flatMap(([fp, serials]) => {
        const caKeyBlob = deps.caKeys.get(fp);
        return caKeyBlob ? [{ caKeyBlob, serials }] : [];
      });
      const bytes = encodeKrl({ version: BigInt(version), generatedAt: new Date(generated_at), comment: 'jit-ssh', revoked });
      const krl = { version: String(version), generated_at: new Date(generated_at).toISOString(), revoked: rows.length, krl: bytes, signature: await sshsign(deps.signer, KRL_NAMESPACE, bytes) };
      cached = { version: String(version), digest, krl };
      return krl;
    },
  };
}
