// The load generator: a process of its own, so the server under test does not
// share its event loop or its CPU accounting with the client. It POSTs
// /v1/certificates with a fresh ed25519 public key each time, from
// `concurrency` keep-alive connections, and prints one JSON result:
// throughput, latency percentiles, errors by status, and the serials it
// received (written to a file, for the "every certificate has its row" check).
//
// Input (JSON in BENCH_LOAD): { url, sessions: [{ token, grant }], concurrency,
// seconds, warmup, serialsFile, keys, client, route }
// client: `http` (node:http with a keep-alive agent, lean) or `fetch` (undici,
// what an ordinary Node program uses); route: `issue` (POST /v1/certificates)
// or `healthz` (GET /healthz, a route doing no work: the HTTP ceiling).

import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { summarize } from './measure.js';

interface LoadInput {
  url: string;
  sessions: Array<{ token: string; grant: string }>;
  concurrency: number;
  seconds: number;
  warmup: number;
  serialsFile: string | null;
  /** Public keys made before the clock starts; one per request, reused only if the run outlasts them. */
  keys: number;
  client?: 'http' | 'fetch';
  route?: 'issue' | 'healthz';
}

const input = JSON.parse(process.env['BENCH_LOAD'] ?? '{}') as LoadInput;
const target = new URL(input.url);

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

const generate = promisify(generateKeyPair);

async function freshKey(): Promise<string> {
  const x = Buffer.from((await generate('ed25519')).publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return `ssh-ed25519 ${Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(x)]).toString('base64')} bench`;
}

// Made on the thread pool: generateKeyPairSync was seen to stall, now and then, in long loops here.
const keys: string[] = [];
if ((input.route ?? 'issue') === 'issue')
  await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (keys.length < input.keys) keys.push(await freshKey());
  }),
);
let nextKey = 0;
let reused = 0;
const agent = new http.Agent({ keepAlive: true, maxSockets: input.concurrency });

const client = input.client ?? 'http';
const route = input.route ?? 'issue';
const okStatus = route === 'issue' ? 201 : 200;

async function viaFetch(session: { token: string; grant: string }): Promise<{ status: number; body: string }> {
  if (route === 'healthz') {
    const res = await fetch(`${input.url}/healthz`, { signal: AbortSignal.timeout(30_000) });
    return { status: res.status, body: await res.text() };
  }
  if (nextKey === keys.length) {
    nextKey = 0;
    reused++;
  }
  const res = await fetch(`${input.url}/v1/certificates`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${session.token}` },
    body: JSON.stringify({ public_key: keys[nextKey++], request_id: session.grant }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: await res.text() };
}

function viaHttp(session: { token: string; grant: string }): Promise<{ status: number; body: string }> {
  if (route === 'healthz') {
    return new Promise((resolve, reject) => {
      const req = http.request({ agent, host: target.hostname, port: target.port, path: '/healthz', method: 'GET' }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
  }
  if (nextKey === keys.length) {
    nextKey = 0;
    reused++;
  }
  const body = JSON.stringify({ public_key: keys[nextKey++], request_id: session.grant });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: target.hostname, port: target.port, path: '/v1/certificates', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${session.token}` } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const post = client === 'fetch' ? viaFetch : viaHttp;

/** Every serial received, warm-up included: each must have exactly one row in the log. */
const serials: string[] = [];

/** Every answer of the right status, warm-up included: the server's CPU time is divided by it. */
let answered = 0;

async function run(seconds: number) {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: input.concurrency }, async (_, i) => {
      const session = input.sessions[i % input.sessions.length]!;
      while (performance.now() < end) {
        const t = performance.now();
        try {
          const res = await post(session);
          if (res.status === okStatus) {
            answered++;
            latencies.push(performance.now() - t);
            if (route === 'issue') serials.push(JSON.parse(res.body).serial);
          } else errors[String(res.status)] = (errors[String(res.status)] ?? 0) + 1;
        } catch (e) {
          errors[(e as Error).message] = (errors[(e as Error).message] ?? 0) + 1;
        }
      }
    }),
  );
  return { latencies, errors, elapsed: (performance.now() - start) / 1000 };
}

const warm = input.warmup > 0 ? await run(input.warmup) : { errors: {} };
const { latencies, errors, elapsed } = await run(input.seconds);
for (const [k, v] of Object.entries(warm.errors)) errors[`warm-up ${k}`] = v;
if (input.serialsFile) writeFileSync(input.serialsFile, serials.join('\n'));
const r = summarize('load', input.concurrency, latencies, elapsed);
agent.destroy();
// Exit explicitly once the result is out: a natural exit under tsx's loader thread has been seen to hang.
process.stdout.write(JSON.stringify({ ...r, errors: Object.values(errors).reduce((a, b) => a + b, 0), errorsBy: errors, received: serials.length, answered, keysReused: reused }) + '\n', () => process.exit(0));
