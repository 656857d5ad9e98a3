// A load of real HTTP requests against running servers, for the fault tests:
// every answer is kept (when it was sent, how long it took, its status and
// content type, the serial of a certificate), so a test can say afterwards
// what clients saw at each moment and compare it with the database.

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

export interface Outcome {
  /** What was asked: `issue`, `login`, ... */
  op: string;
  /** Which server answered (index into the URLs given). */
  server: number;
  /** ms since the load started, when the request was sent and when its answer (or error) came. */
  sent: number;
  done: number;
  /** HTTP status, or 0 when there was no answer (connection refused or reset, client timeout). */
  status: number;
  contentType: string | null;
  retryAfter: string | null;
  body: string;
  /** Transport error when status is 0. */
  error?: string;
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** A fresh ed25519 public key as an OpenSSH line. */
export function freshPublicKey(): string {
  const x = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return `ssh-ed25519 ${Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(x)]).toString('base64')} load`;
}

export interface HttpAnswer {
  status: number;
  contentType: string | null;
  retryAfter: string | null;
  body: string;
  error?: string;
}

/** One request on a fresh connection; never throws: a transport failure is status 0 with its error. */
export function send(agent: http.Agent | undefined, url: string, method: string, path: string, body?: unknown, token?: string, timeoutMs = 60_000): Promise<HttpAnswer> {
  const target = new URL(path, url);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method,
        headers: {
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] ?? null, retryAfter: (res.headers['retry-after'] as string | undefined) ?? null, body: text }),
        );
        res.on('error', (e) => resolve({ status: 0, contentType: null, retryAfter: null, body: '', error: e.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: 0, contentType: null, retryAfter: null, body: '', error: e.message }));
    req.end(payload);
  });
}

export interface LoadWorker {
  op: string;
  /** Which of the servers this worker talks to. */
  server: number;
  /** Makes one request; the load records its answer. */
  call(url: string, agent: http.Agent): Promise<HttpAnswer>;
}

export interface Load {
  /** Every answer so far (the array grows while the load runs). */
  outcomes: Outcome[];
  /** ms since the load started. */
  elapsed(): number;
  /** Resolves once at least `n` more answers of `op` matching `pred` have arrived, or rejects after `timeoutMs`. */
  until(pred: (o: Outcome) => boolean, n?: number, timeoutMs?: number): Promise<void>;
  /** Stops sending and waits for the answers in flight. */
  stop(): Promise<Outcome[]>;
}

/** Runs each worker in a loop until stopped; `pauseMs` between its requests (0: back to back). */
export function startLoad(urls: string[], workers: LoadWorker[], opts: { pauseMs?: number } = {}): Load {
  const start = performance.now();
  const elapsed = () => performance.now() - start;
  const outcomes: Outcome[] = [];
  const agents = urls.map(() => new http.Agent({ keepAlive: true, maxSockets: 64 }));
  let stopping = false;
  const waiters: Array<{ pred: (o: Outcome) => boolean; left: number; resolve: () => void }> = [];
  const loops = workers.map(async (w) => {
    while (!stopping) {
      const sent = elapsed();
      const a = await w.call(urls[w.server]!, agents[w.server]!);
      const o: Outcome = { op: w.op, server: w.server, sent, done: elapsed(), ...a };
      outcomes.push(o);
      for (const wt of [...waiters]) {
        if (wt.pred(o) && --wt.left <= 0) {
          waiters.splice(waiters.indexOf(wt), 1);
          wt.resolve();
        }
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  });
  return {
    outcomes,
    elapsed,
    until(pred, n = 1, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`the load did not see ${n} matching answers within ${timeoutMs} ms (${outcomes.length} answers so far)`));
        }, timeoutMs);
        const waiter = {
          pred,
          left: n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        waiters.push(waiter);
      });
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      for (const a of agents) a.destroy();
      return outcomes;
    },
  };
}

/** Issuance workers: POST /v1/certificates with a fresh key each time, for `grant` held by `token`. */
export function issueWorker(server: number, token: string, grant: string): LoadWorker {
  return {
    op: 'issue',
    server,
    call: (url, agent) => send(agent, url, 'POST', '/v1/certificates', { public_key: freshPublicKey(), request_id: grant }, token),
  };
}

/** The serial of a 201 issuance answer. */
export function serialOf(o: Outcome): string | null {
  if (o.op !== 'issue' || o.status !== 201) return null;
  return String(JSON.parse(o.body).serial);
}

/** Milliseconds until `check` resolves truthy, polling every `everyMs`; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
