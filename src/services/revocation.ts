// Emergency revocation (a stolen laptop): certificates end on their own, so
// a revocation only needs to last until the certificate's own end. The KRL
// lists revoked serials still within their validity, per CA key; its
// version increases whenever that list changes, and its generated_date is
// when it was signed (see published-version.ts).
//
// By serial, one certificate is revoked (a lost key: its grant stays, and a
// new key can be certified for it). By request or by user, the grants go
// too: otherwise the holder, or whoever holds their session, would fetch a
// fresh certificate for the same grant a moment later.

import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { actorName, type Actor } from '../core/actor.js';
import { DomainError } from '../core/errors.js';
import { appendEvent } from '../db/audit-events.js';
import { certificateState } from '../db/certificate-state.js';
import { findRequest, lockLiveGrants } from '../db/requests.js';
import { revokedStillValid, revokeLiveCertificates } from '../db/revocations.js';
import { endGrants } from './grant-end.js';
import type { Database } from '../db/schema.js';
import { encodeKrl } from '../ssh/krl.js';
import { sshsign } from '../ssh/sshsig.js';
import { parseSerial } from '../ssh/serial.js';
import type { Signer } from '../ssh/signer.js';
import { publishedVersion, signingTime } from './published-version.js';

export const KRL_NAMESPACE = 'jit-ssh-krl';

export interface RevokeTarget {
  serial?: string;
  user?: string;
  request?: string;
}

export interface Krl {
  version: string;
  /** The KRL's generated_date: when it was signed (RFC 3339). */
  generated_at: string;
  revoked: number;
  krl: Buffer;
  signature: string;
}

export interface RevocationService {
  /** Revokes the live certificates named; by request or user also ends the grants (`ended_grants`). */
  revoke(target: RevokeTarget, reason: string, actor: Actor): Promise<{ revoked: string[]; ended_grants: string[] }>;
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
  let cached: { version: string; digest: string; generatedAt: number; krl: Krl } | undefined;
  return {
    async revoke(target, reason, actor) {
      const given = [target.serial, target.user, target.request].filter((v) => v !== undefined && v !== '');
      if (given.length !== 1) throw new DomainError('invalid_input', 'name exactly one of: a serial, --user or --request');
      if (typeof reason !== 'string' || reason.trim().length < 3) throw new DomainError('invalid_input', '--reason is required');
      const serial = target.serial === undefined ? undefined : parseSerial(target.serial);
      if (serial === null) throw new DomainError('invalid_input', 'serial must be a decimal number');
      if (serial?.kind === 'never') throw new DomainError('not_found', `no certificate with serial ${target.serial}`);
      if (serial) target = { ...target, serial: serial.value };
      const at = now();
      return deps.db.transaction().execute(async (trx) => {
        // The grants first: ending one takes its lock, after which no certificate can be written for it.
        let grants: Awaited<ReturnType<typeof lockLiveGrants>> = [];
        if (target.user) grants = await lockLiveGrants(trx, at, { username: target.user });
        if (target.request) {
          // An extension request names the grant it extended; certificates carry the grant's id.
          const r = await findRequest(trx, target.request);
          grants = await lockLiveGrants(trx, at, { ids: [r?.extends_grant ?? target.request] });
        }
        const ended = await endGrants(trx, grants, { at, actor, reason: `revoked: ${reason}`, revocationReason: reason, cause: 'revoke' });
        const which = target.serial ? { serial: target.serial } : target.user ? { username: target.user } : { grantIds: [...new Set([target.request!, ...grants.map((g) => g.id)])] };
        const revoked = await revokeLiveCertificates(trx, which, { reason, actor: actorName(actor), at });
        if (target.serial && revoked.length === 0) {
          const any = await certificateState(trx, target.serial);
          const already = any && any.valid_before > at && any.revoked;
          if (!already) throw new DomainError(any ? 'conflict' : 'not_found', any ? `certificate ${target.serial} has already expired: nothing to revoke` : `no certificate with serial ${target.serial}`);
        }
        // The grants' certificates were logged as they were revoked with their grants; this event lists the rest.
        await appendEvent(trx, { at, actor, action: 'certificate.revoke', target: target.serial ?? target.user ?? target.request ?? null, outcome: 'ok', clientAddress: null, details: { reason, serials: revoked, ended_grants: ended.ended_grants, ...target } });
        return { revoked: [...new Set([...ended.revoked, ...revoked])].sort(), ended_grants: ended.ended_grants };
      });
    },

    async krl() {
      const at = now();
      const rows = await revokedStillValid(deps.db, at);
      const byCa = new Map<string, bigint[]>();
      for (const r of rows) byCa.set(r.ca_key_fingerprint, [...(byCa.get(r.ca_key_fingerprint) ?? []), BigInt(r.serial)]);
      // Certificates of a CA key servers no longer trust (retired in a rotation) are refused
      // anyway; a KRL section needs the key itself, so they are left out.
      const sections = [...byCa].flatMap(([fp, serials]) => {
        const caKeyBlob = deps.caKeys.get(fp);
        return caKeyBlob ? [{ fp, caKeyBlob, serials }] : [];
      });
      // The digest covers exactly what the KRL lists, so one version is always one content,
      // even between instances that trust different CA keys during a rotation.
      const digest = createHash('sha256').update(sections.map((x) => `${x.fp} ${x.serials.join(' ')}\n`).join('')).digest('hex');
      // krl_version moves only when that content changes; generated_date is the signing time,
      // which moves on every signing period even when the content does not, so that a server
      // can tell this KRL from an older signing of the same version replayed to it.
      const { version, since } = await publishedVersion(deps.db, 'krl_state', digest, at);
      const generatedAt = signingTime(at, since);
      if (cached && cached.version === version && cached.digest === digest && cached.generatedAt === generatedAt.getTime()) return cached.krl;
      const revoked = sections.map(({ caKeyBlob, serials }) => ({ caKeyBlob, serials }));
      const bytes = encodeKrl({ version: BigInt(version), generatedAt, comment: 'jit-ssh', revoked });
      const krl = { version, generated_at: generatedAt.toISOString(), revoked: rows.length, krl: bytes, signature: await sshsign(deps.signer, KRL_NAMESPACE, bytes) };
      cached = { version, digest, generatedAt: generatedAt.getTime(), krl };
      return krl;
    },
  };
}
