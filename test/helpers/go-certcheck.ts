// Go's golang.org/x/crypto/ssh reading certificates (test/go/certcheck.go):
// the parser behind Teleport, Vault and step-ca tooling. Built once per test
// file, offline, against Debian's golang-golang-x-crypto-dev.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CHECKER_SOURCE = fileURLToPath(new URL('../go/certcheck.go', import.meta.url));
// Debian's golang-golang-x-crypto-dev installs x/crypto here; GOPATH mode needs no network.
const GOPATH = process.env.CERTCHECK_GOPATH ?? '/usr/share/gocode';

/** Why the Go checks cannot run here (a reason to skip them), or false when they can. */
export const GO_MISSING: string | false = (() => {
  const res = spawnSync('go', ['version'], { encoding: 'utf8' });
  return res.error ? `go is not on PATH (${res.error.message}); install golang-go and golang-golang-x-crypto-dev to run the Go-strict checks` : false;
})();

/** One line of certcheck's output: the certificate's fields as Go read them, or why it refused it. */
export interface GoResult {
  source: string;
  line: number;
  ok: boolean;
  error?: string;
  stage?: string;
  type?: string;
  certType?: number;
  keyType?: string;
  serial?: string;
  keyId?: string;
  principals?: string[];
  validAfter?: string;
  validBefore?: string;
  criticalOptions?: Record<string, string>;
  extensions?: Record<string, string>;
  extensionNames?: string[];
  signatureFormat?: string;
  signatureKey?: string;
  comment?: string;
}

/** Builds the checker into `dir`; returns its path. */
export function buildCertcheck(dir: string): string {
  const checker = path.join(dir, 'certcheck');
  const res = spawnSync('go', ['build', '-o', checker, CHECKER_SOURCE], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '', GOCACHE: path.join(dir, 'gocache'), CGO_ENABLED: '0' },
  });
  assert.equal(res.status, 0, `building ${CHECKER_SOURCE} failed (GO111MODULE=off GOPATH=${GOPATH}):\n${res.stderr}${res.error ?? ''}`);
  return checker;
}

export interface CertcheckOptions {
  principal: string;
  /** Unix seconds the checker takes for now. */
  now: number;
  /** Lines go in on stdin rather than in a file. */
  stdin?: boolean;
  /** The critical options the checker supports (certcheck's default: force-command,verify-required). */
  criticalOptions?: string[];
}

let fileCount = 0;

/** Runs the checker on certificate lines (in a file under `dir`, or on stdin) and returns one result per line. */
export function runCertcheck(checker: string, dir: string, lines: string[], o: CertcheckOptions): GoResult[] {
  const args = ['-principal', o.principal, '-now', String(o.now), ...(o.criticalOptions ? ['-critical-options', o.criticalOptions.join(',')] : [])];
  const input = lines.map((l) => l + '\n').join('');
  let res;
  if (o.stdin) {
    res = spawnSync(checker, args, { encoding: 'utf8', input });
  } else {
    const file = path.join(dir, `certs-${++fileCount}.pub`);
    writeFileSync(file, input);
    res = spawnSync(checker, [...args, file], { encoding: 'utf8' });
  }
  const results = res.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as GoResult);
  assert.equal(results.length, lines.length, `certcheck printed ${results.length} results for ${lines.length} lines: ${res.stderr}`);
  assert.equal(res.status, results.every((r) => r.ok) ? 0 : 1, `certcheck exit status ${res.status}: ${res.stderr}`);
  return results;
}
