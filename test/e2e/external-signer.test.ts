// The CA key can live outside the process: the whole server runs on a Signer
// whose key is held by ssh-agent (as a KMS or HSM would hold it), with no CA
// key file anywhere. Certificates, the KRL's and /v1/ca.pub's signatures and
// the audit log's checkpoints all come from that signer, and OpenSSH's own
// tools accept them.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkpoint } from '../../src/audit/chain.js';
import { loadServerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/server.js';
import { publicKeyLine } from '../../src/ssh/signer.js';
import { agentSigner, startAgent } from '../helpers/agent-signer.js';
import { secretOf } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';

const POLICY = `roles:
  ops:
    description: a test role
    principals: [ops]
    requesters: [group:engineering]
    auto_approve:
      - groups: [engineering]
        max_duration: 1h
    certificate:
      extensions: [permit-pty]
`;

const KINDS: Array<{ name: string; args: string[]; ca: string }> = [
  { name: 'ed25519', args: ['-t', 'ed25519'], ca: 'ED25519' },
  { name: 'ecdsa-p256', args: ['-t', 'ecdsa', '-b', '256'], ca: 'ECDSA' },
  { name: 'rsa-3072', args: ['-t', 'rsa', '-b', '3072'], ca: 'RSA' },
];

describe('a CA key held by another process (ssh-agent standing in for a KMS or HSM)', () => {
  for (const kind of KINDS) {
    test(`ok-${kind.name}: certificates, KRL and ca.pub signatures, and audit checkpoints all come from the external signer`, async () => {
      const dir = tempDir();
      const keyFile = path.join(dir, 'ca');
      execFileSync('ssh-keygen', ['-q', ...kind.args, '-N', '', '-C', 'agent-ca', '-f', keyFile], { stdio: 'ignore' });
      const agent = await startAgent(dir, keyFile);
      // The private key now exists only inside the agent.
      rmSync(keyFile);
      const caLine = readFileSync(`${keyFile}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
      writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
      const config = loadServerConfig({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_CA_KEY: keyFile, JIT_SSH_POLICY: path.join(dir, 'policy.yaml'), PORT: '0', JIT_SSH_PASSWORD_COST: '14' }, {}, dir);
      const signer = await agentSigner(agent.socket);
      const running = await startServer(config, silentLogger, { signer });
      try {
        assert.equal(running.signer, signer);
        assert.ok(!existsSync(keyFile), 'no CA key file was made');
        assert.equal(publicKeyLine(signer), caLine);
        const get = async (p: string) => Buffer.from(await (await fetch(`${running.url}${p}`)).arrayBuffer());
        const listed = (await get('/v1/ca.pub')).toString().split('\n');
        assert.match(listed[0]!, /^# jit-ssh CA key list, version \d+, signed at \d+ /);
        assert.deepEqual(listed.slice(1), [`${caLine} jit-ssh-ca`, '']);

        // A certificate, through the API, for a key made by ssh-keygen.
        const { otpauth_uri } = await running.users.add({ name: 'alice', groups: ['engineering'], password: 'alice-password-long' }, 'os:test');
        const totp = execFileSync('oathtool', ['--totp', '-b', secretOf(otpauth_uri)], { encoding: 'utf8' }).trim();
        const json = async (p: string, body: unknown, token?: string) => {
          const res = await fetch(`${running.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
          const out = (await res.json()) as Record<string, any>;
          assert.ok(res.ok, `${p}: ${res.status} ${JSON.stringify(out)}`);
          return out;
        };
        const { token } = await json('/v1/auth/login', { username: 'alice', password: 'alice-password-long', totp });
        const request = await json('/v1/requests', { role: 'ops', duration: '30m', reason: 'external signer test' }, token);
        assert.equal(request['status'], 'approved');
        const user = userKey(dir, 'ed25519');
        const issued = await json('/v1/certificates', { request_id: request['id'], public_key: user.publicLine }, token);
        const certFile = `${user.path}-cert.pub`;
        writeFileSync(certFile, `${issued['certificate']}\n`);
        // ssh-keygen checks the certificate's signature when it reads it.
        const shown = execFileSync('ssh-keygen', ['-L', '-f', certFile], { encoding: 'utf8' });
        assert.ok(shown.includes(`Signing CA: ${kind.ca} ${signer.fingerprint}`), shown);
        if (kind.name.startsWith('rsa')) assert.match(shown, /using rsa-sha2-512/);
        // Negative control: the same certificate with one signature byte changed is refused.
        const blob = Buffer.from(String(issued['certificate']).split(' ')[1]!, 'base64');
        blob[blob.length - 5]! ^= 0x01;
        writeFileSync(certFile, `${String(issued['certificate']).split(' ')[0]} ${blob.toString('base64')}\n`);
        assert.notEqual(spawnSync('ssh-keygen', ['-L', '-f', certFile]).status, 0, 'a corrupted signature must not parse');

        // The KRL's and the CA key list's detached signatures verify with ssh-keygen -Y.
        const allowed = path.join(dir, 'allowed_signers');
        writeFileSync(allowed, `jit-ssh-ca ${caLine}\n`);
        for (const [p, ns] of [['/v1/krl', 'jit-ssh-krl'], ['/v1/ca.pub', 'jit-ssh-ca-keys']] as const) {
          const sig = path.join(dir, `${ns}.sig`);
          writeFileSync(sig, await get(`${p}.sig`));
          const v = spawnSync('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'jit-ssh-ca', '-n', ns, '-s', sig], { input: await get(p) });
          assert.equal(v.status, 0, `${p}.sig: ${v.stderr}`);
        }

        // An audit checkpoint signed by the same signer, verified by the server's audit service.
        const checkpoints = () => running.database.db.selectFrom('chain_checkpoints').select(['ca_fingerprint']).where('stream', '=', 'certificates').execute();
        for (let i = 0; i < 50 && (await checkpoints()).length === 0; i++) {
          // Null until the sealer has chained the certificate (or when its own first tick signed it already).
          if ((await checkpoint(running.database.db, 'certificates', running.signer, new Date())) === null) await sleep(200);
        }
        const made = await checkpoints();
        assert.ok(made.length > 0 && made.every((c) => c.ca_fingerprint === signer.fingerprint), JSON.stringify(made));
        const verified = await running.audit.verify();
        assert.ok(verified.ok, JSON.stringify(verified));
        const certs = verified.streams.find((s) => s.stream === 'certificates')!;
        assert.ok(certs.checkpoints >= 1, JSON.stringify(certs));
        assert.ok(signer.signs >= 4, `signatures made by the agent: ${signer.signs}`);
      } finally {
        await running.close();
        agent.stop();
      }
    });
  }
});
