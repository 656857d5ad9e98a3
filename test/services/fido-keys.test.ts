// Hardware-bound roles (`require_key: fido`), through the real service on each
// database: certificates only for FIDO security-key public keys, each carrying
// the `verify-required` critical option, read back by OpenSSH's ssh-keygen -L
// and by Go's x/crypto/ssh, the CA signature verified by both; a plain key is
// refused with key_type_not_allowed, and nothing is signed or logged for it.
// The security-key public keys are encoded by the test (PROTOCOL.u2f): no
// authenticator is needed for the public half.

import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { sshFingerprint } from '../../src/ssh/pubkey.js';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { SshWriter } from '../../src/ssh/wire.js';
import { countCertificates, findCertificateBySerial } from '../helpers/certificate-rows.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { buildCertcheck, GO_MISSING, runCertcheck } from '../helpers/go-certcheck.js';
import { identity, TestClock } from '../helpers/identity.js';
import { listCertificate } from '../helpers/keygen-list.js';
import { tempDir, userKey } from '../helpers/keys.js';

const POLICY = `
defaults:
  max_duration: 8h
  request_ttl: 1h
  clock_skew: 60s
roles:
  vault:
    description: the key vault hosts, hardware-bound
    principals: [keeper]
    requesters: [group:engineering]
    auto_approve: [{groups: [engineering], max_duration: 1h}]
    require_key: fido
    certificate:
      extensions: [permit-pty]
      force_command: /usr/local/bin/vault-shell
  web:
    principals: [deploy]
    requesters: [group:engineering]
    auto_approve: [{groups: [engineering], max_duration: 1h}]
`;

const dir = tempDir();

/** A sk-ssh-ed25519@openssh.com public key line: string type, string pubkey (32 bytes), string application. */
function skEd25519Line(): string {
  const blob = new SshWriter().string('sk-ssh-ed25519@openssh.com').string(randomBytes(32)).string('ssh:').toBuffer();
  return `sk-ssh-ed25519@openssh.com ${blob.toString('base64')} yubikey@laptop`;
}

/** A sk-ecdsa-sha2-nistp256@openssh.com public key line: string type, string "nistp256", string Q (a real P-256 point), string application. */
function skEcdsaLine(): string {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const q = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const blob = new SshWriter().string('sk-ecdsa-sha2-nistp256@openssh.com').string('nistp256').string(q).string('ssh:').toBuffer();
  return `sk-ecdsa-sha2-nistp256@openssh.com ${blob.toString('base64')} yubikey@laptop`;
}

const SK_KINDS = [
  { name: 'sk-ed25519', line: skEd25519Line, certType: 'sk-ssh-ed25519-cert-v01@openssh.com', keyType: 'sk-ssh-ed25519@openssh.com', label: 'ED25519-SK-CERT' },
  { name: 'sk-ecdsa', line: skEcdsaLine, certType: 'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com', keyType: 'sk-ecdsa-sha2-nistp256@openssh.com', label: 'ECDSA-SK-CERT' },
];

let checker = '';
before(() => {
  if (!GO_MISSING) checker = buildCertcheck(dir);
});

let files = 0;
function certFile(line: string): string {
  const file = path.join(dir, `c${++files}-cert.pub`);
  writeFileSync(file, line + '\n');
  return file;
}

for (const backend of BACKENDS) {
  describe(`hardware-bound roles: require_key fido (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    let alice: Awaited<ReturnType<typeof id.as>>;

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, { lockoutThreshold: 100, tokenTtl: 30 * 86400 }, { policy: POLICY });
      alice = await id.as(await id.addUser('alice', ['engineering']));
    });
    after(() => t.cleanup());

    const grant = async (role: string) => {
      const r = await alice('POST', '/v1/requests', { role, duration: '30m', reason: 'rotate the vault keys' });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.status, 'approved');
      return r.body.id as string;
    };
    const counts = async () => {
      const { n } = await t.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
      return { certificates: await countCertificates(t.db), events: Number(n) };
    };

    test('ok: a fido role certifies sk-ed25519 and sk-ecdsa keys as sk certificates with verify-required; ssh-keygen -L and Go read them and verify the CA signature', async () => {
      const grantId = await grant('vault');
      for (const kind of SK_KINDS) {
        const publicKey = kind.line();
        const before = await counts();
        const res = await alice('POST', '/v1/certificates', { public_key: publicKey, request_id: grantId });
        assert.equal(res.status, 201, `${kind.name}: ${JSON.stringify(res.body)}`);
        const [type, b64] = res.body.certificate.split(' ');
        assert.equal(type, kind.certType, kind.name);
        assert.equal((await counts()).certificates, before.certificates + 1, `${kind.name}: logged`);

        // Our strict reader: the certified key is the one sent, byte for byte, and the CA signed it.
        const parsed = parseCertificate(Buffer.from(b64, 'base64'));
        assert.equal(parsed.signatureValid, true, kind.name);
        assert.deepEqual(parsed.publicKeyBlob, Buffer.from(publicKey.split(' ')[1]!, 'base64'), kind.name);
        assert.deepEqual([...parsed.criticalOptions], [['force-command', '/usr/local/bin/vault-shell'], ['verify-required', '']], kind.name);

        // OpenSSH: ssh-keygen -L parses it and checks the CA signature before listing anything.
        const listing = listCertificate(certFile(res.body.certificate));
        assert.equal(listing.Type, `${kind.certType} user certificate`, kind.name);
        assert.equal(listing['Public key'], `${kind.label} ${sshFingerprint(parsed.publicKeyBlob)}`, kind.name);
        assert.equal(listing['Signing CA'], `ED25519 ${id.signer.fingerprint} (using ssh-ed25519)`, kind.name);
        assert.deepEqual(listing['Critical Options'], ['force-command /usr/local/bin/vault-shell', 'verify-required'], kind.name);
        assert.deepEqual(listing.Principals, ['keeper'], kind.name);

        // The log row says so too.
        const row = await findCertificateBySerial(t.db, BigInt(res.body.serial));
        assert.equal(row?.publicKeyType, kind.keyType, kind.name);
        assert.deepEqual(row?.criticalOptions, { 'force-command': '/usr/local/bin/vault-shell', 'verify-required': '' }, kind.name);
      }
    });

    test('ok: Go reads the sk certificates of a fido role, verifies the CA signature and lists verify-required; a Go checker that does not know the option refuses them (fails closed)', { skip: GO_MISSING }, async () => {
      const grantId = await grant('vault');
      const lines: string[] = [];
      for (const kind of SK_KINDS) {
        const res = await alice('POST', '/v1/certificates', { public_key: kind.line(), request_id: grantId });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        lines.push(res.body.certificate);
      }
      const now = Math.floor(clock.ms / 1000);
      const read = runCertcheck(checker, dir, lines, { principal: 'keeper', now });
      read.forEach((r, i) => {
        const kind = SK_KINDS[i]!;
        assert.equal(r.ok, true, `${kind.name}: ${r.error}`);
        assert.equal(r.type, kind.certType);
        assert.equal(r.keyType, kind.keyType);
        assert.deepEqual(r.criticalOptions, { 'force-command': '/usr/local/bin/vault-shell', 'verify-required': '' });
        assert.equal(r.signatureFormat, 'ssh-ed25519');
        assert.equal(r.signatureKey, publicKeyLine(id.signer));
      });
      // CheckCert checks the signature: a flipped byte in it is refused.
      const [type, b64] = lines[0]!.split(' ') as [string, string];
      const damaged = Buffer.from(b64, 'base64');
      damaged[damaged.length - 1]! ^= 0x01;
      const [bad] = runCertcheck(checker, dir, [`${type} ${damaged.toString('base64')}`], { principal: 'keeper', now });
      assert.equal(bad!.ok, false);
      assert.equal(bad!.error, 'ssh: certificate signature does not verify');
      // A reader that does not know verify-required refuses the certificate, as sshd before 8.4 does.
      for (const r of runCertcheck(checker, dir, lines, { principal: 'keeper', now, criticalOptions: ['force-command'] })) {
        assert.equal(r.ok, false);
        assert.equal(r.error, 'ssh: unsupported critical option "verify-required" in certificate');
      }
    });

    test('fail: a fido role refuses a plain ed25519 key (and ECDSA, RSA) with 403 key_type_not_allowed; nothing is signed or logged', async () => {
      const grantId = await grant('vault');
      const plain = [userKey(dir, 'ed25519', undefined, `plain-ed25519-${backend.name}`), userKey(dir, 'ecdsa', 256, `plain-ecdsa-${backend.name}`), userKey(dir, 'rsa', 3072, `plain-rsa-${backend.name}`)];
      const before = await counts();
      for (const key of plain) {
        const res = await alice('POST', '/v1/certificates', { public_key: key.publicLine, request_id: grantId });
        const type = key.publicLine.split(' ')[0];
        assert.equal(res.status, 403, type);
        assert.equal(res.body.code, 'key_type_not_allowed', type);
        assert.equal(res.body.status, 403);
        assert.equal(res.body.detail, `role vault takes only FIDO security keys (sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com), not ${type}: make one with ssh-keygen -t ed25519-sk -O verify-required`);
      }
      assert.deepEqual(await counts(), before, 'no certificate row, no audit event');
      // The same grant still issues for a security key.
      const sk = await alice('POST', '/v1/certificates', { public_key: skEd25519Line(), request_id: grantId });
      assert.equal(sk.status, 201, JSON.stringify(sk.body));
      assert.match(sk.body.certificate, /^sk-ssh-ed25519-cert-v01@openssh\.com /);
    });

    test('fail: a broken key is still a 400 invalid_public_key for a fido role, and an ended grant a 409, before the key type is judged', async () => {
      const grantId = await grant('vault');
      const broken = await alice('POST', '/v1/certificates', { public_key: 'sk-ssh-ed25519@openssh.com AAAA', request_id: grantId });
      assert.equal(broken.status, 400);
      assert.equal(broken.body.code, 'invalid_public_key');
      clock.advance(3600);
      const ended = await alice('POST', '/v1/certificates', { public_key: userKey(dir, 'ed25519', undefined, `late-${backend.name}`).publicLine, request_id: grantId });
      assert.equal(ended.status, 409);
    });

    test('ok: a role without require_key certifies security keys too, without verify-required', async () => {
      const grantId = await grant('web');
      for (const kind of SK_KINDS) {
        const res = await alice('POST', '/v1/certificates', { public_key: kind.line(), request_id: grantId });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        assert.equal(res.body.certificate.split(' ')[0], kind.certType);
        const listing = listCertificate(certFile(res.body.certificate));
        assert.equal(listing['Critical Options'], '(none)', kind.name);
      }
    });

    test('ok: the roles list says which roles take security keys only', async () => {
      const res = await alice('GET', '/v1/roles');
      assert.equal(res.status, 200);
      const byName = Object.fromEntries(res.body.roles.map((r: { name: string; require_key: string | null }) => [r.name, r.require_key]));
      assert.deepEqual(byName, { vault: 'fido', web: null });
    });
  });
}
