// The second half of issuance, once the terms are decided: mint → verify →
// log → return. Holds the CA signer, the serial source and the batched log
// writer. "No log row, no certificate": a certificate is returned only after
// the statement holding its row committed; if the write fails, or the signed
// certificate is not exactly its terms, the signed bytes are dropped.

import type { Kysely } from 'kysely';
import { recordHash } from '../audit/chain.js';
import { givenTerms, type CertificateTerms, type GivenTerms } from '../core/cert-terms.js';
import { DomainError } from '../core/errors.js';
import { batchedWriter } from '../db/batch.js';
import { certificateContent, insertCertificates, type CertificateRecord } from '../db/certificates.js';
import { isCheckViolation, isUniqueViolation } from '../db/errors.js';
import type { Database } from '../db/schema.js';
import { mintCertificate, type MintedCertificate } from '../ssh/certificate.js';
import { certificateChecker, type CertificateCheck } from '../ssh/certificate-verify.js';
import { parseUserPublicKey, type UserPublicKey } from '../ssh/pubkey.js';
import { randomSerial } from '../ssh/serial.js';
import { signsInProcess, type Signer } from '../ssh/signer.js';

/** A certificate's terms given whole, for a certificate no grant backs (tooling, tests). */
export interface IssueInput extends GivenTerms {
  role: string | null;
  /** The user's public key, one OpenSSH line. */
  publicKey: string;
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

/** What the log row records beside the terms. */
export interface LogFacts {
  username: string;
  requestId: string | null;
  role: string | null;
  clientAddress: string | null;
}

export interface Issuer {
  /** Mints, verifies, logs and returns a certificate of `key` on the terms `termsFor` gives for a fresh serial. */
  certify(key: UserPublicKey, termsFor: (serial: bigint) => CertificateTerms, facts: LogFacts): Promise<IssuedCertificate>;
  /** Vets the key of `input`, then certifies it on the terms given. */
  issue(input: IssueInput): Promise<IssuedCertificate>;
}

export interface IssuerDeps {
  db: Kysely<Database>;
  signer: Signer;
  now?: () => Date;
  serial?: () => bigint;
}

/** A signed certificate that is not what was meant to be signed: a fault of the signer, never the caller's. */
export class CertificateCheckError extends Error {
  override name = 'CertificateCheckError';
}

const SERIAL_ATTEMPTS = 3;

const rfc3339 = (unix: number) => new Date(unix * 1000).toISOString().replace(/\.000Z$/, 'Z');

/** Step 4: the body encoded from the terms and signed by the CA. */
export function mint(signer: Signer, terms: CertificateTerms): Promise<MintedCertificate> {
  return mintCertificate(signer, terms);
}

/** Step 5: parsed back and checked against the CA key and the terms, as a relying party would. */
export async function verifyMinted(check: CertificateCheck, cert: MintedCertificate, terms: CertificateTerms): Promise<void> {
  const wrong = await check(cert.text, terms);
  if (wrong !== null) throw new CertificateCheckError(`the signed certificate ${terms.serial} is not its terms: ${wrong}`);
}

/** The log row of a certificate. */
export function certificateRecord(cert: MintedCertificate, terms: CertificateTerms, key: UserPublicKey, facts: LogFacts, caKeyFingerprint: string, issuedAt: Date): CertificateRecord {
  return {
    serial: terms.serial,
    keyId: terms.keyId,
    username: facts.username,
    requestId: facts.requestId,
    role: facts.role,
    principals: [...terms.principals],
    validAfter: new Date(terms.validAfter * 1000),
    validBefore: new Date(terms.validBefore * 1000),
    extensions: [...terms.extensions],
    criticalOptions: { ...terms.criticalOptions },
    publicKeyType: key.type,
    publicKeyFingerprint: key.fingerprint,
    caKeyFingerprint,
    certificate: cert.text,
    clientAddress: facts.clientAddress,
    issuedAt,
  };
}

/** Step 7: what the caller receives. */
export function issued(cert: MintedCertificate, terms: CertificateTerms): IssuedCertificate {
  return {
    certificate: cert.text,
    serial: terms.serial.toString(),
    key_id: terms.keyId,
    principals: [...terms.principals],
    valid_after: rfc3339(terms.validAfter),
    valid_before: rfc3339(terms.validBefore),
  };
}

export function createIssuer(deps: IssuerDeps): Issuer {
  const now = deps.now ?? (() => new Date());
  const nextSerial = deps.serial ?? randomSerial;
  // Every field is checked on every certificate; the signature too, unless node:crypto made it here.
  const check = certificateChecker(deps.signer.publicKeyBlob, { signature: !signsInProcess(deps.signer) });
  // Rows written by concurrent issuances share a statement and its commit (see db/batch.ts);
  // each certificate is still returned only after the statement holding its row committed.
  const writeRow = batchedWriter((recs: Array<CertificateRecord & { recordHash: Buffer }>) => insertCertificates(deps.db, recs));

  /** Step 6: the row written and committed, hashed as it is written so the audit chain takes it without reading it back. False: the serial was taken. */
  async function log(record: CertificateRecord, lastAttempt: boolean): Promise<boolean> {
    try {
      await writeRow({ ...record, recordHash: recordHash('certificates', certificateContent(record)) });
      return true;
    } catch (e) {
      // A random 63-bit serial colliding is rare but possible across many
      // instances; the primary key catches it, and a new serial is drawn.
      if (isUniqueViolation(e, 'certificates_pkey') && !lastAttempt) return false;
      // The grant ended while this certificate was being made: it is dropped unlogged, never returned.
      if (isCheckViolation(e, 'certificates_grant_live')) throw new DomainError('conflict', `grant ${record.requestId} has ended`);
      throw e;
    }
  }

  async function certify(key: UserPublicKey, termsFor: (serial: bigint) => CertificateTerms, facts: LogFacts): Promise<IssuedCertificate> {
    for (let attempt = 1; ; attempt++) {
      const terms = termsFor(nextSerial());
      const cert = await mint(deps.signer, terms);
      await verifyMinted(check, cert, terms);
      const record = certificateRecord(cert, terms, key, facts, deps.signer.fingerprint, now());
      if (await log(record, attempt >= SERIAL_ATTEMPTS)) return issued(cert, terms);
    }
  }

  return {
    certify,
    async issue(input) {
      const key = parseUserPublicKey(input.publicKey);
      return certify(key, (serial) => givenTerms(input, key, serial), input);
    },
  };
}
