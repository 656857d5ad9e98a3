// Loaded into a server process under test (NODE_OPTIONS="--expose-gc --import
// <this file>") so that its memory can be read without the noise of garbage not
// yet collected: on SIGUSR2 it runs a full collection and appends one JSON line
// of process.memoryUsage() (bytes) to the file named by MEMORY_PROBE_FILE.
// Nothing of the product is changed; only the test sends the signal.

import { appendFileSync } from 'node:fs';

const file = process.env['MEMORY_PROBE_FILE'];
if (file && typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    // Twice: the first collection may only queue finalizers that free more.
    globalThis.gc();
    setImmediate(() => {
      globalThis.gc();
      appendFileSync(file, `${JSON.stringify(process.memoryUsage())}\n`);
    });
  });
}
