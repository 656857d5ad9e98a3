// Host certificates: servers prove who they are to clients as users do to
// servers. Signed by the host CA (its own key, never the CA key), logged in
// the same issuance log as user certificates (kind 'host', chained alike), and
// reached three ways:
//
//   sign     an operator signs a host key (`jit-ssh-ca host sign`)
//   enroll   a server's refresher spends a one-time enrollment token
//            (`jit-ssh-ca host token`) on its host keys, and gets their
//            certificates and a renewal credential
//   renew    the refresher, with that credential, while its certificates are valid
//
// Each path: vet the keys and names → mint → verify → log, in one transaction
// with the token or credential it spends: no log row, no certificate, and a
// token spent only with the certificates it paid for.

import { createHash, randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { actorName, type Actor } from '../core/actor.js';
import { unixSeconds } from '../core/cert-terms.js';
import { DomainError } from '../core/errors.js';
import { appendEvent } from '../db/audit-events.js';
import { insertCertificates, certificateContent, type CertificateRecord } from '../db/certificates.js';
import { isUniqueViolation } from '../db/errors.js';
import { enrollmentByToken, insertEnrollment, renewableEnrollment, setRenewUntil, spendToken } from '../db/hosts.js';
import type { Database } from '../db/schema.js';
import { recordHash } from '../audit/chain.js';
import { mintCertificate, SSH_CERT_TYPE_HOST, type CertificateSpec } from '../ssh/certificate.js';
import { certificateChecker } from '../ssh/certificate-verify.js';
import { parseUserPublicKey, type UserPublicKey } from '../ssh/pubkey.js';
import { randomSerial } from '../ssh/serial.js';
import type { CaKeys } from './ca-signer.js';
import { retiredLines } from './ca-keys.js';
import { newId } from './ids.js';

/** A host name as servers are reached by it: a DNS name or an IPv4 address, at most 253 characters. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const MAX_NAMES = 32;
const MAX_KEYS = 8;
/** Host certificates start this far back, for servers and clients whose clocks lag. */
const BACKDATE = 60;
export const TOKEN_PREFIX = 'jhe_';
export const RENEWAL_PREFIX = 'jhr_';
export const DEFAULT_TOKEN_TTL = 3600;
export const MAX_TOKEN_TTL = 7 * 86400;

export interface HostCertificate {
  certificate: string;
  serial: string;
  key_id: string;
  principals: string[];
  valid_after: string;
  valid_before: string;
  /** The certified host key's type, e.g. `ssh-ed25519`. */
  public_key_type: string;
}

export interface EnrollmentToken {
  id: string;
  /** The secret itself: shown once, stored only as its hash. */
  token: string;
  names: string[];
  expires_at: string;
}

export interface Enrolled {
  certificates: HostCertificate[];
  /** Only from enroll: the credential renewing these certificates (shown once, stored as a hash). */
  renewal_credential?: string;
  /** Renewals are accepted until then (the end of these certificates). */
  renew_until: string;
}

export interface HostService {
  /** The host CA public keys as served at /v1/host-ca.pub: the signer first, then older ones still trusted, then `# retired` lines. */
  caKeysText(): string;
  sign(input: { publicKey: string; names: string[]; ttl?: number }, actor: Actor, clientAddress?: string | null): Promise<HostCertificate>;
  createToken(input: { names: string[]; ttl?: number }, actor: Actor): Promise<EnrollmentToken>;
  enroll(body: Record<string, unknown>, clientAddress: string | null): Promise<Enrolled>;
  renew(body: Record<string, unknown>, clientAddress: string | null): Promise<Enrolled>;
}

export interface HostServiceDeps {
  db: Kysely<Database>;
  keys: CaKeys;
  /** Validity of a host certificate, seconds. */
  ttl: number;
  now?: () => Date;
  serial?: () => bigint;
}

const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** The names, checked and without repeats (in the order given). */
export function vetHostNames(names: unknown, what = 'names'): string[] {
  if (!Array.isArray(names) || names.length === 0) throw new DomainError('invalid_input', `${what} must be a non-empty list of host names`);
  if (names.length > MAX_NAMES) throw new DomainError('invalid_input', `${what}: at most ${MAX_NAMES} names`);
  const out: string[] = [];
  for (const n of names) {
    if (typeof n !== 'string' || !HOST_NAME.test(n)) throw new DomainError('invalid_input', `${what}: ${JSON.stringify(n)} is not a host name (letters, digits, - and .)`);
    const lower = n.toLowerCase();
    if (!out.includes(lower)) out.push(lower);
  }
  return out;
}

function vetKeys(value: unknown): UserPublicKey[] {
  if (!Array.isArray(value) || value.length === 0) throw new DomainError('invalid_input', 'public_keys must be a non-empty list of OpenSSH public key lines');
  if (value.length > MAX_KEYS) throw new DomainError('invalid_input', `public_keys: at most ${MAX_KEYS} keys`);
  const keys = value.map((v, i) => {
    if (typeof v !== 'string') throw new DomainError('invalid_input', `public_keys[${i}] must be a string`);
    const k = parseUserPublicKey(v);
    if (k.type.includes('-cert-')) throw new DomainError('invalid_public_key', `public_keys[${i}] is a certificate, not a host key`);
    return k;
  });
  if (new Set(keys.map((k) => k.fingerprint)).size !== keys.length) throw new DomainError('invalid_input', 'public_keys: a key is given twice');
  return keys;
}

function secretOf(body: Record<string, unknown>, field: string, prefix: string): string {
  const v = body[field];
  if (typeof v !== 'string' || !v.startsWith(prefix) || v.length > 128) throw new DomainError('invalid_input', `${field} must be a ${prefix}… string as jit-ssh-ca gave it`);
  return v;
}

export function createHostService(deps: HostServiceDeps): HostService {
  const now = deps.now ?? (() => new Date());
  const nextSerial = deps.serial ?? randomSerial;
  const { signer } = deps.keys;
  const check = certificateChecker(signer.publicKeyBlob);

  /** Mints and verifies one host certificate; returns it with its log row. */
  async function mint(key: UserPublicKey, names: string[], ttl: number, at: Date, actor: string, origin: string | null, clientAddress: string | null) {
    const serial = nextSerial();
    const validAfter = unixSeconds(at) - BACKDATE;
    const spec: CertificateSpec = {
      publicKey: key,
      serial,
      keyId: `${names[0]}@jit-ssh host ${origin ? `${origin} ` : ''}serial=${serial}`,
      principals: names,
      validAfter,
      validBefore: unixSeconds(at) + ttl,
      extensions: [],
      criticalOptions: {},
      certType: SSH_CERT_TYPE_HOST,
    };
    const cert = await mintCertificate(signer, spec);
    const wrong = await check(cert.text, spec);
    if (wrong !== null) throw new Error(`the signed host certificate ${serial} is not its terms: ${wrong}`);
    const record: CertificateRecord = {
      serial,
      keyId: spec.keyId,
      username: actor,
      requestId: null,
      role: null,
      principals: names,
      validAfter: new Date(spec.validAfter * 1000),
      validBefore: new Date(spec.validBefore * 1000),
      extensions: [],
      criticalOptions: {},
      publicKeyType: key.type,
      publicKeyFingerprint: key.fingerprint,
      caKeyFingerprint: signer.fingerprint,
      certificate: cert.text,
      clientAddress,
      issuedAt: at,
      kind: 'host',
    };
    const out: HostCertificate = {
      certificate: cert.text,
      serial: serial.toString(),
      key_id: spec.keyId,
      principals: names,
      valid_after: rfc3339(record.validAfter),
      valid_before: rfc3339(record.validBefore),
      public_key_type: key.type,
    };
    return { out, record };
  }

  /** Mints the certificates of `keys` and writes their rows in `trx`; a serial collision starts the transaction again. */
  async function certify(trx: Transaction<Database>, keys: UserPublicKey[], names: string[], ttl: number, at: Date, actor: string, origin: string | null, clientAddress: string | null): Promise<HostCertificate[]> {
    const made = await Promise.all(keys.map((k) => mint(k, names, ttl, at, actor, origin, clientAddress)));
    try {
      await insertCertificates(trx, made.map((m) => ({ ...m.record, recordHash: recordHash('certificates', certificateContent(m.record)) })));
    } catch (e) {
      if (isUniqueViolation(e, 'certificates_pkey')) throw new SerialRetry();
      throw e;
    }
    return made.map((m) => m.out);
  }

  /** Runs `work` in a transaction, again (a new one) when a random serial collided. */
  async function inTransaction<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await deps.db.transaction().execute(work);
      } catch (e) {
        if (e instanceof SerialRetry && attempt < 3) continue;
        throw e;
      }
    }
  }

  return {
    caKeysText() {
      const lines = ['# jit-ssh host CA keys: trust them for host certificates (known_hosts: @cert-authority PATTERNS KEY)', ...deps.keys.publicKeys, ...retiredLines(deps.keys.retiredKeys)];
      return lines.map((l) => l + '\n').join('');
    },

    async sign(input, actor, clientAddress = null) {
      const names = vetHostNames(input.names, '--name');
      const [key] = vetKeys([input.publicKey]);
      const ttl = input.ttl ?? deps.ttl;
      if (!Number.isInteger(ttl) || ttl < 60 || ttl > 5 * 365 * 86400) throw new DomainError('invalid_input', 'validity must be between 1m and 5 years');
      const at = now();
      return inTransaction(async (trx) => {
        const [cert] = await certify(trx, [key!], names, ttl, at, actorName(actor), null, clientAddress);
        await appendEvent(trx, { at, actor, action: 'host.sign', target: names[0]!, outcome: 'ok', clientAddress, details: { names, serial: cert!.serial, public_key_fingerprint: key!.fingerprint } });
        return cert!;
      });
    },

    async createToken(input, actor) {
      const names = vetHostNames(input.names, 'names');
      const ttl = input.ttl ?? DEFAULT_TOKEN_TTL;
      if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_TOKEN_TTL) throw new DomainError('invalid_input', 'an enrollment token lives between 1m and 7d');
      const at = now();
      const id = newId(at);
      const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const expires = new Date(at.getTime() + ttl * 1000);
      await deps.db.transaction().execute(async (trx) => {
        await insertEnrollment(trx, { id, names, token_hash: sha256(token), created_by: actorName(actor), created_at: at, expires_at: expires });
        await appendEvent(trx, { at, actor, action: 'host.token', target: names[0]!, outcome: 'ok', clientAddress: null, details: { enrollment: id, names, expires_at: expires.toISOString() } });
      });
      return { id, token, names, expires_at: rfc3339(expires) };
    },

    async enroll(body, clientAddress) {
      const token = secretOf(body, 'token', TOKEN_PREFIX);
      const keys = vetKeys(body['public_keys']);
      const hash = sha256(token);
      const asked = body['names'] === undefined ? null : vetHostNames(body['names'], 'names');
      const at = now();
      const renewal = RENEWAL_PREFIX + randomBytes(32).toString('base64url');
      const result = await inTransaction(async (trx) => {
        const row = await spendToken(trx, hash, asked ?? [], sha256(renewal), at, clientAddress);
        if (!row) return null;
        const names = asked ?? row.names;
        const certificates = await certify(trx, keys, names, deps.ttl, at, `host:${row.id}`, `enroll=${row.id}`, clientAddress);
        const until = new Date(Math.min(...certificates.map((c) => Date.parse(c.valid_before))));
        await setRenewUntil(trx, row.id, until, null);
        await appendEvent(trx, { at, actor: `host:${row.id}`, action: 'host.enroll', target: names[0]!, outcome: 'ok', clientAddress, details: { enrollment: row.id, names, serials: certificates.map((c) => c.serial) } });
        return { certificates, renewal_credential: renewal, renew_until: rfc3339(until) };
      });
      if (result) return result;
      // Why it was refused, said plainly; the token is left as it was.
      const row = await enrollmentByToken(deps.db, hash);
      const refuse = async (detail: string, code: 'unauthenticated' | 'forbidden') => {
        await appendEvent(deps.db, { at, actor: row ? `host:${row.id}` : 'anonymous', action: 'host.enroll', target: row?.names[0] ?? null, outcome: 'refused', clientAddress, details: { reason: detail } });
        return new DomainError(code, detail);
      };
      if (!row || row.used_at !== null || row.expires_at <= at) throw await refuse('the enrollment token is unknown, used or expired; make a new one with jit-ssh-ca host token', 'unauthenticated');
      const other = (asked ?? []).filter((n) => !row.names.includes(n));
      throw await refuse(`the enrollment token was not made for ${other.join(', ')} (it enrolls ${row.names.join(', ')})`, 'forbidden');
    },

    async renew(body, clientAddress) {
      const credential = secretOf(body, 'renewal_credential', RENEWAL_PREFIX);
      const keys = vetKeys(body['public_keys']);
      const at = now();
      const result = await inTransaction(async (trx) => {
        const row = await renewableEnrollment(trx, sha256(credential), at);
        if (!row) return null;
        const certificates = await certify(trx, keys, row.names, deps.ttl, at, `host:${row.id}`, `enroll=${row.id}`, clientAddress);
        const until = new Date(Math.min(...certificates.map((c) => Date.parse(c.valid_before))));
        await setRenewUntil(trx, row.id, until, at);
        await appendEvent(trx, { at, actor: `host:${row.id}`, action: 'host.renew', target: row.names[0]!, outcome: 'ok', clientAddress, details: { enrollment: row.id, serials: certificates.map((c) => c.serial) } });
        return { certificates, renew_until: rfc3339(until) };
      });
      if (result) return result;
      await appendEvent(deps.db, { at, actor: 'anonymous', action: 'host.renew', target: null, outcome: 'refused', clientAddress, details: {} });
      throw new DomainError('unauthenticated', 'the renewal credential is unknown or its certificates have expired; enroll again with a new token (jit-ssh-ca host token)');
    },
  };
}

class SerialRetry extends Error {}
