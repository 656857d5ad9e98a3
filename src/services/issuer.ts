// The issuance pipeline, in one place and in this order:
//   vet the user key → choose serial and key ID → mint and sign → write the
//   log row → return the certificate.
// "No log row, no certificate": the certificate is returned only after its
// row is committed; if the write fails, the signed bytes are dropped.

import type { Kysely } from 'kysely';
import { recordHash } from '../audit/chain.js';
import { certificateContent, insertCertificates, type CertificateRecord } from '../db/certificates.js';
import { batchedWriter } from '../db/batch.js';
import { isCheckViolation, isUniqueViolation } from '../db/errors.js';
import { DomainError } from '../core/errors.js';
import type { Database } from '../db/schema.js';
import { mintCertificate, type MintedCertificate } from '../ssh/certificate.js';
import { parseUserPublicKey } from '../ssh/pubkey.js';
import { randomSerial } from '../ssh/serial.js';
import type { Signer } from '../ssh/signer.js';

export interface IssueInput {
  username: string;
  requestId: string | null;
  role: string | null;
  /** The user's public key, one OpenSSH line. */
  publicKey: string;
  principals: readonly string[];
  validAfter: Date;
  validBefore: Date;
  extensions: readonly string[];
  criticalOptions: Readonly<Record<string, string>>;
  clientAddress: string | null;
}

export interface IssuedCertificate {
  certificate: string;
  /** Decimal: serials are unsigned 64-bit and lose precision as JSON numbers. */
  serial: string;
  key_id: string;
  principals: string[];
  valid_after: string;
  valid_before: string;
}

export interface Issuer {
  issue(input: IssueInput): Promise<IssuedCertificate>;
}

export interface IssuerDeps {
  db: Kysely<Database>;
  signer: Signer;
  now?: () => Date;
  serial?: () => bigint;
}

const SERIAL_ATTEMPTS = 3;

export function keyIdFor(username: string, requestId: string | null, serial: bigint): string {
  return `${username}@jit-ssh req=${requestId ?? 'none'} serial=${serial}`;
}

const toUnix = (d: Date) => Math.floor(d.getTime() / 1000);
const rfc3339 = (unix: number) => new Date(unix * 1000).toISOString().replace(/\.000Z$/, 'Z');

export function createIssuer(deps: IssuerDeps): Issuer {
  const now = deps.now ?? (() => new Date());
  const nextSerial = deps.serial ?? randomSerial;
  // Rows written by concurrent issuances share a statement and its commit (see db/batch.ts);
  // each certificate is still returned only after the statement holding its row committed.
  const writeRow = batchedWriter((recs: Array<CertificateRecord & { recordHash: Buffer }>) => insertCertificates(deps.db, recs));
  return {
    async issue(input) {
      const key = parseUserPublicKey(input.publicKey);
      const validAfter = toUnix(input.validAfter);
      const validBefore = toUnix(input.validBefore);
      for (let attempt = 1; ; attempt++) {
        const serial = nextSerial();
        const keyId = keyIdFor(input.username, input.requestId, serial);
        const cert: MintedCertificate = await mintCertificate(deps.signer, {
          publicKey: key,
          serial,
          keyId,
          principals: input.principals,
          validAfter,
          validBefore,
          extensions: input.extensions,
          criticalOptions: input.criticalOptions,
        });
        try {
          const record: CertificateRecord = {
            serial,
            keyId,
            username: input.username,
            requestId: input.requestId,
            role: input.role,
            principals: [...input.principals],
            validAfter: new Date(validAfter * 1000),
            validBefore: new Date(validBefore * 1000),
            extensions: [...input.extensions],
            criticalOptions: { ...input.criticalOptions },
            publicKeyType: key.type,
            publicKeyFingerprint: key.fingerprint,
            caKeyFingerprint: deps.signer.fingerprint,
            certificate: cert.text,
            clientAddress: input.clientAddress,
            issuedAt: now(),
          };
          // Hashed as it is written, so the audit chain takes it without reading it back.
          await writeRow({ ...record, recordHash: recordHash('certificates', certificateContent(record)) });
        } catch (e) {
          // A random 63-bit serial colliding is rare but possible across many
          // instances; the primary key catches it, and a new serial is drawn.
          if (isUniqueViolation(e, 'certificates_pkey') && attempt < SERIAL_ATTEMPTS) continue;
          // The grant ended while this certificate was being made: it is dropped unlogged, never returned.
          if (isCheckViolation(e, 'certificates_grant_live')) throw new DomainError('conflict', `grant ${input.requestId} has ended`);
          throw e;
        }
        return {
          certificate: cert.text,
          serial: serial.toString(),
          key_id: keyId,
          principals: [...input.principals],
          valid_after: rfc3339(validAfter),
          valid_before: rfc3339(validBefore),
        };
      }
    },
  };
}
