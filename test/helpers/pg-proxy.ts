// A TCP proxy in front of PostgreSQL that can lose a commit's answer: the
// statement runs and commits, and the connection breaks before the client
// hears so (the database crashing, or the network failing, at that moment).
// The client cannot know whether its write is in the log.

import net from 'node:net';

export interface PgProxy {
  port: number;
  /** The URL of database `name` through the proxy. */
  urlFor(name: string): string;
  /**
   * The next `n` statements whose SQL contains `sqlText` commit, and then their
   * connection is cut just before the server's ReadyForQuery (sent after the
   * commit) reaches the client. Resolves when all `n` have been cut.
   */
  loseCommitAnswers(sqlText: string, n?: number): Promise<void>;
  close(): Promise<void>;
}

export function startPgProxy(target: { host: string; port: number }): Promise<PgProxy> {
  let armed: { text: Buffer; left: number; done: () => void } | null = null;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let tail = Buffer.alloc(0);
    // Set once this connection sent an armed statement; then its answer is watched.
    let watching = false;
    let sawCommandComplete = false;
    let pending = Buffer.alloc(0);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      if (armed && !watching) {
        const seen = Buffer.concat([tail, d]);
        if (seen.includes(armed.text)) watching = true;
        tail = seen.subarray(Math.max(0, seen.length - armed.text.length));
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!watching) return void client.write(d);
      // Server messages: type (1 byte), length (4 bytes, counting itself), body.
      pending = Buffer.concat([pending, d]);
      let offset = 0;
      while (pending.length - offset >= 5) {
        const type = String.fromCharCode(pending[offset]!);
        const length = pending.readUInt32BE(offset + 1);
        if (pending.length - offset < 1 + length) break;
        if (type === 'C' && pending.subarray(offset + 5, offset + 1 + length).toString('latin1').startsWith('INSERT')) sawCommandComplete = true;
        if (type === 'Z' && sawCommandComplete && armed && armed.left > 0) {
          // Everything up to the commit's ReadyForQuery, and not that.
          client.write(pending.subarray(0, offset), () => cut());
          pending = Buffer.alloc(0);
          if (--armed.left === 0) {
            armed.done();
            armed = null;
          }
          return;
        }
        if (type === 'Z') sawCommandComplete = false;
        offset += 1 + length;
      }
      client.write(pending.subarray(0, offset));
      pending = pending.subarray(offset);
    });
    const end = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        port,
        urlFor: (name) => `postgres://postgres@127.0.0.1:${port}/${name}`,
        loseCommitAnswers(sqlText, n = 1) {
          return new Promise<void>((done) => {
            armed = { text: Buffer.from(sqlText), left: n, done };
          });
        },
        close() {
          for (const s of sockets) s.destroy();
          return new Promise<void>((r) => server.close(() => r()));
        },
      });
    });
  });
}
