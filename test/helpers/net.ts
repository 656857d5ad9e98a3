// Ports for the servers the tests and benchmarks start.

import net from 'node:net';

/** A port nobody listens on right now. Another process may take it before the caller binds it: retry on EADDRINUSE. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
