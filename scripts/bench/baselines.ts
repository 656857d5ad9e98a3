// What issuance is compared with: signing alone (node:crypto), signing the
// way shell-script CAs (ssh-keygen -s) and sshpk do it, and minting a whole
// certificate with our encoder.

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sshpk from 'sshpk';
import { mintCertificate, type CertificateSpec } from '../../src/ssh/certificate.js';
import { parseUserPublicKey } from '../../src/ssh/pubkey.js';
import { randomSerial } from '../../src/ssh/serial.js';
import { createKeySigner } from '../../src/ssh/signer.js';
import { measure, type Result } from './measure.js';

export async function runBaselines(tmp: string, seconds: number): Promise<Result[]> {
  process.stderr.write('signing baselines\n');
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const signer = createKeySigner(caKey);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, 'user')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, 'ca')]);
  const userLine = readFileSync(path.join(tmp, 'user.pub'), 'utf8').trim();
  const now = Math.floor(Date.now() / 1000);
  const spec = (): CertificateSpec => ({
    publicKey: parseUserPublicKey(userLine),
    serial: randomSerial(),
    keyId: 'bench@jit-ssh req=bench serial=0',
    principals: ['deploy'],
    validAfter: now - 60,
    validBefore: now + 3600,
    extensions: ['permit-pty'],
    criticalOptions: {},
  });
  const msg = Buffer.alloc(300, 7);
  const sshpkCa = sshpk.parsePrivateKey(readFileSync(path.join(tmp, 'ca')), 'ssh');
  const sshpkUser = sshpk.parseKey(userLine, 'ssh');
  const short = Math.min(seconds, 3);
  return [
    await measure('node:crypto ed25519 sign (raw)', 1, () => sign(null, msg, caKey), seconds),
    await measure('mintCertificate (ed25519 CA)', 16, () => mintCertificate(signer, spec()), seconds),
    await measure('sshpk.createCertificate (ed25519 CA)', 1, () => sshpk.createCertificate(sshpk.identityForUser('deploy'), sshpkUser, sshpk.identityForUser('ca'), sshpkCa, { lifetime: 3600 }), short),
    await measure('ssh-keygen -s per certificate', 1, () =>
      execFileSync('ssh-keygen', ['-q', '-s', path.join(tmp, 'ca'), '-I', 'bench', '-n', 'deploy', '-V', '-1m:+1h', '-z', '1234', path.join(tmp, 'user.pub')], { stdio: 'ignore' }), short),
  ];
}
