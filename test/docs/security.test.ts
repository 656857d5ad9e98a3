// docs/security.md names, for each defence, the test that shows it. This keeps
// those names true: every test it cites exists, by file and by name, and
// every source file it points to is there.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/process.js';

const DOC = readFileSync(path.join(ROOT, 'docs', 'security.md'), 'utf8');

test('ok: every test docs/security.md cites exists, in the file it names', () => {
  const cites = [...DOC.matchAll(/`(test\/[^`]+\.test\.ts)` › “([^”]+)”/g)].map((m) => ({ file: m[1]!, name: m[2]! }));
  assert.ok(cites.length >= 60, `only ${cites.length} citations found: has the citation format changed?`);
  const missing = cites.filter(({ file, name }) => !existsSync(path.join(ROOT, file)) || !readFileSync(path.join(ROOT, file), 'utf8').includes(name));
  assert.deepEqual(missing, [], 'cited tests that do not exist');
  // Every section of defences cites at least one test per row.
  for (const row of DOC.split('\n').filter((l) => /^\| (?!defence|---|asset|key type|what)/.test(l) && DOC.indexOf(l) > DOC.indexOf('## Defences'))) {
    if (DOC.indexOf(row) > DOC.indexOf('## Keeping the CA key')) break;
    assert.match(row, /`test\/[^`]+\.test\.ts` › “/, `a defence without a test: ${row.slice(0, 100)}`);
  }
});

test('ok: the source files and helpers docs/security.md points to exist', () => {
  const paths = [...DOC.matchAll(/`((?:src|test|docker)\/[A-Za-z0-9_./-]+)`/g)].map((m) => m[1]!);
  assert.ok(paths.length >= 5);
  for (const p of paths) assert.ok(existsSync(path.join(ROOT, p)), p);
  assert.match(readFileSync(path.join(ROOT, 'src', 'services', 'ca-signer.ts'), 'utf8'), /export async function openCaSigner\(/);
});
