#!/usr/bin/env node
// Runs the bundle that `npm install` builds (scripts/build-helper.mjs) when it
// was built from the sources as they are now, else the TypeScript sources
// directly (tsx): there is no build step to forget, only a slower start.
import { readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

function bundleIsCurrent() {
  try {
    const inputs = JSON.parse(readFileSync(new URL('dist/jit-ssh.inputs.json', root), 'utf8'));
    for (const [file, [size, mtime]] of Object.entries(inputs)) {
      const s = statSync(new URL(file, root));
      if (s.size !== size || s.mtimeMs !== mtime) return false;
    }
    return true;
  } catch {
    return false;
  }
}

if (process.env.JIT_SSH_FROM_SOURCE !== '1' && bundleIsCurrent()) {
  await import('../dist/jit-ssh.mjs');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/helper.ts');
}
