// Bundles the `jit-ssh` helper into one JavaScript file, dist/jit-ssh.mjs, so
// that it starts without compiling TypeScript: `jit-ssh ssh` runs before every
// connection, and compiling ~40 modules on each start costs more than the
// connection itself. bin/jit-ssh.js runs the bundle only while every source
// file it was built from is unchanged (same size and modification time, listed
// in dist/jit-ssh.inputs.json), and the sources through tsx otherwise — an
// edited checkout never runs stale code; `npm run build` makes it fast again.
// Runs on `npm install` / `npm ci` (the `prepare` script).

import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(ROOT, 'src/cli/helper.ts');
const OUT = path.join(ROOT, 'dist/jit-ssh.mjs');

if (!existsSync(ENTRY)) process.exit(0); // an install before the sources are there (a container's dependency layer)

const { build } = await import('esbuild');
mkdirSync(path.dirname(OUT), { recursive: true });
const result = await build({
  absWorkingDir: ROOT, // the metafile's paths are relative to it
  entryPoints: [ENTRY],
  outfile: OUT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  metafile: true,
  logLevel: 'warning',
  charset: 'utf8',
  // The CommonJS packages in the bundle (sshpk, …) require Node's own modules.
  banner: { js: "import { createRequire as __jitSshRequire } from 'node:module'; const require = __jitSshRequire(import.meta.url);" },
});
const inputs = {};
for (const file of Object.keys(result.metafile.inputs)) {
  if (file.split('/').includes('node_modules')) continue; // changed only by an install, which rebuilds
  const s = statSync(path.join(ROOT, file));
  inputs[file] = [s.size, s.mtimeMs];
}
writeFileSync(path.join(ROOT, 'dist/jit-ssh.inputs.json'), JSON.stringify(inputs) + '\n');
