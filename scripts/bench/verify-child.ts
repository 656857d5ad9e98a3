// `audit verify` of the certificates log in a process of its own, so its time
// and memory are its own: prints { seconds, sealed, ok }.

import { verifyStream } from '../../src/audit/chain.js';
import { openDatabase } from '../../src/db/index.js';

const h = await openDatabase({ databaseUrl: process.env['BENCH_DB']!, dataDir: null, poolSize: 2 });
const t = performance.now();
const v = await verifyStream(h.db, 'certificates');
await h.close();
process.stdout.write(JSON.stringify({ seconds: (performance.now() - t) / 1000, sealed: v.sealed, ok: v.ok, problem: v.problem?.detail ?? null }) + '\n', () => process.exit(0));
