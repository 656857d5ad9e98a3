// A software authenticator for tests that run without a browser: an ECDSA
// P-256 key made with node:crypto, answering WebAuthn registrations ("none"
// attestation) and assertions in the JSON form browsers send, with a
// signature counter of its own that a test may set (a cloned key).
// The browser tests use Chromium's virtual authenticator instead.

import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** The little CBOR the attestation object and COSE key need: small maps of ints, strings and bytes. */
function cbor(v: unknown): Buffer {
  const head = (major: number, n: number) => {
    if (n < 24) return Buffer.from([(major << 5) | n]);
    if (n < 256) return Buffer.from([(major << 5) | 24, n]);
    if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 255]);
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  };
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === 'string') return Buffer.concat([head(3, Buffer.byteLength(v)), Buffer.from(v)]);
  if (v instanceof Uint8Array) return Buffer.concat([head(2, v.length), Buffer.from(v)]);
  if (v instanceof Map) return Buffer.concat([head(5, v.size), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)])]);
  if (v && typeof v === 'object') return cbor(new Map(Object.entries(v)));
  throw new Error(`cbor: cannot encode ${String(v)}`);
}

export interface SoftAuthenticator {
  credentialId: string;
  /** The counter the next assertion will carry, less one. */
  signCount: number;
  /** Answers navigator.credentials.create() with these options. */
  register(options: { challenge: string; rp: { id?: string } }, origin: string): Record<string, unknown>;
  /** Answers navigator.credentials.get() with these options. */
  assert(options: { challenge: string; rpId?: string }, origin: string, opts?: { userVerified?: boolean }): Record<string, unknown>;
  /** The same key with a counter of its own: a copy of the authenticator. */
  clone(signCount: number): SoftAuthenticator;
}

/** `counting: false` is an authenticator that keeps no counter (it always sends 0). */
export function softAuthenticator(opts: { signCount?: number; counting?: boolean; key?: { privateKey: KeyObject; publicKey: KeyObject }; credentialId?: string } = {}): SoftAuthenticator {
  const { privateKey, publicKey } = opts.key ?? generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const id = opts.credentialId ? Buffer.from(opts.credentialId, 'base64url') : randomBytes(16);
  const jwk = publicKey.export({ format: 'jwk' });
  const cose = cbor(new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]));
  const rpHash = (rpId: string) => createHash('sha256').update(rpId).digest();
  const clientData = (type: string, challenge: string, origin: string) => Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  const counter = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const self: SoftAuthenticator = {
    credentialId: b64u(id),
    signCount: opts.signCount ?? 0,
    register(options, origin) {
      const rpId = options.rp.id ?? new URL(origin).hostname;
      const idLen = Buffer.alloc(2);
      idLen.writeUInt16BE(id.length);
      // UP | UV | AT
      const authData = Buffer.concat([rpHash(rpId), Buffer.from([0x45]), counter(self.signCount), Buffer.alloc(16), idLen, id, cose]);
      const attestationObject = cbor({ fmt: 'none', attStmt: new Map(), authData });
      return {
        id: self.credentialId,
        rawId: self.credentialId,
        type: 'public-key',
        response: { clientDataJSON: b64u(clientData('webauthn.create', options.challenge, origin)), attestationObject: b64u(attestationObject), transports: ['internal'] },
        clientExtensionResults: {},
        authenticatorAttachment: 'platform',
      };
    },
    assert(options, origin, o = {}) {
      const rpId = options.rpId ?? new URL(origin).hostname;
      if (opts.counting !== false) self.signCount += 1;
      const authData = Buffer.concat([rpHash(rpId), Buffer.from([o.userVerified === false ? 0x01 : 0x05]), counter(self.signCount)]);
      const cd = clientData('webauthn.get', options.challenge, origin);
      const signature = sign('sha256', Buffer.concat([authData, createHash('sha256').update(cd).digest()]), privateKey);
      return {
        id: self.credentialId,
        rawId: self.credentialId,
        type: 'public-key',
        response: { clientDataJSON: b64u(cd), authenticatorData: b64u(authData), signature: b64u(signature) },
        clientExtensionResults: {},
        authenticatorAttachment: 'platform',
      };
    },
    clone(signCount) {
      return softAuthenticator({ signCount, counting: opts.counting, key: { privateKey, publicKey }, credentialId: self.credentialId });
    },
  };
  return self;
}
