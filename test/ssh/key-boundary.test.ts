// The CA private key is touched in one place: src/ssh/ (loaded in ca-key.ts,
// used only inside signer.ts's Signer), opened by services/ca-signer.ts's openCaSigner, and
// everything else signs through the Signer interface. This reads the sources
// and fails when code elsewhere starts handling private keys or signing with
// node:crypto, so swapping in a KMS or HSM Signer keeps covering every use.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/process.js';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|tsx)$/.test(e.name) ? [p] : [];
  });
}

/** Each pattern, and the only files allowed to contain it (with the reason). */
const RULES: Array<{ what: string; pattern: RegExp; allowed: Record<string, string> }> = [
  {
    what: 'signing with node:crypto',
    pattern: /\bsign as \w+|\bcreateSign\b|\bcrypto\.sign\(|import \{[^}]*\bsign\b[^}]*\} from 'node:crypto'/,
    allowed: { 'src/ssh/signer.ts': 'the file-key Signer itself' },
  },
  {
    what: 'parsing or building a private key',
    pattern: /\bcreatePrivateKey\b|\bparsePrivateKey\b/,
    allowed: { 'src/ssh/ca-key.ts': 'loads the CA key file', 'src/config/tls.ts': 'checks the HTTPS key (not the CA key) at start-up' },
  },
  {
    what: 'making a Signer from a key object',
    pattern: /\bcreateKeySigner\(/,
    allowed: { 'src/ssh/signer.ts': 'defines it', 'src/ssh/ca-key.ts': 'the file key; the public line of a generated key' },
  },
  {
    what: 'loading the CA key file',
    pattern: /\bloadCaKey\(/,
    allowed: { 'src/ssh/ca-key.ts': 'defines it', 'src/services/ca-signer.ts': 'openCaSigner, the one place a Signer is chosen' },
  },
];

test('ok: only src/ssh and openCaSigner handle the CA private key; everything else goes through the Signer', () => {
  const files = sources(path.join(ROOT, 'src')).map((f) => path.relative(ROOT, f));
  assert.ok(files.length > 50, `only ${files.length} source files found`);
  for (const rule of RULES) {
    const found = files.filter((f) => rule.pattern.test(readFileSync(path.join(ROOT, f), 'utf8')));
    const stray = found.filter((f) => !(f in rule.allowed));
    assert.deepEqual(stray, [], `${rule.what} outside ${Object.keys(rule.allowed).join(', ')}: ${stray.join(', ')}`);
    // The table stays true: each allowed file still does it (else the rule checks nothing).
    for (const f of Object.keys(rule.allowed)) assert.ok(found.includes(f), `${f} no longer matches "${rule.what}": update this table`);
  }
});

test('ok: certificates, SSHSIG signatures (KRL, ca.pub, checkpoints) and the sealer take a Signer, not a key', () => {
  const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');
  assert.match(read('src/ssh/certificate.ts'), /await signer\.sign\(/);
  assert.match(read('src/ssh/sshsig.ts'), /export async function sshsign\(signer: Signer,/);
  assert.match(read('src/ssh/sshsig.ts'), /await signer\.sign\(/);
  assert.match(read('src/services/ca-signer.ts'), /export async function openCaSigner\(config: ServerConfig, logger: Logger\): Promise<Signer>/);
});
