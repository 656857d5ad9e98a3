import { createAdaptorServer } from '@hono/node-server';
import { promises as fs } from 'node:fs';
import type { Server } from 'node:http';
import net from 'node:net';
import path from 'node:path';

/** True when something accepts connections on the Unix socket `file`. */
export function socketAnswers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Serves `fetch` on a Unix socket created with mode 0600 (umask set around
 * bind, so there is no moment when others could connect). A socket left by a
 * crashed server is replaced; one that still answers belongs to a running
 * server, and starting is refused.
 */
export async function listenAdminSocket(file: string, fetch: (req: Request) => Response | Promise<Response>): Promise<{ close(): Promise<void> }> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  if (await socketAnswers(file)) throw new Error(`admin socket ${file} is in use by another jit-ssh-ca; stop it or set JIT_SSH_ADMIN_SOCKET`);
  await fs.rm(file, { force: true });
  const server = createAdaptorServer({ fetch }) as Server;
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  await fs.chmod(file, 0o600);
  return {
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fs.rm(file, { force: true });
    },
  };
}
