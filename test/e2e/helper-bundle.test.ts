// The `jit-ssh` helper starts from the bundle `npm install` builds
// (scripts/build-helper.mjs) only while that bundle was built from the sources
// as they are: an edited source file makes bin/jit-ssh.js run the sources
// instead, so a checkout never runs stale code. Checked on a copy of the
// tree, so the bundle the other tests use is left alone.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from '../helpers/process.js';

let dir: string;
const helper = () => execFileSync(process.execPath, [path.join(dir, 'bin/jit-ssh.js'), '--help'], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' } });
const firstLine = () => helper().split('\n')[0];

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'jit-ssh-bundle-'));
  for (const part of ['bin', 'src', 'scripts', 'package.json', 'tsconfig.json']) cpSync(path.join(ROOT, part), path.join(dir, part), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  execFileSync(process.execPath, [path.join(dir, 'scripts/build-helper.mjs')]);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('ok: the helper runs the bundle while it matches the sources', () => {
  assert.equal(firstLine(), 'jit-ssh — just-in-time SSH access from the terminal');
  // Proof that the bundle, not the sources, answered: change the bundle alone.
  const bundle = path.join(dir, 'dist/jit-ssh.mjs');
  writeFileSync(bundle, readFileSync(bundle, 'utf8').replace('jit-ssh — just-in-time SSH access from the terminal', 'jit-ssh — from the bundle'));
  assert.equal(firstLine(), 'jit-ssh — from the bundle');
});

test('ok: an edited source file makes it run the sources, until the bundle is built again', () => {
  const source = path.join(dir, 'src/cli/client/format.ts');
  const later = new Date(Date.now() + 5000);
  utimesSync(source, later, later);
  assert.equal(firstLine(), 'jit-ssh — just-in-time SSH access from the terminal', 'the stale bundle ran');
  const entry = path.join(dir, 'src/cli/helper.ts');
  writeFileSync(entry, readFileSync(entry, 'utf8').replace('jit-ssh — just-in-time SSH access from the terminal', 'jit-ssh — edited source'));
  assert.equal(firstLine(), 'jit-ssh — edited source');
  execFileSync(process.execPath, [path.join(dir, 'scripts/build-helper.mjs')]);
  const bundle = readFileSync(path.join(dir, 'dist/jit-ssh.mjs'), 'utf8');
  assert.ok(bundle.includes('jit-ssh — edited source'));
  assert.equal(firstLine(), 'jit-ssh — edited source');
});
