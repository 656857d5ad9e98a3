import { createAdaptorServer } from '@hono/node-server';
import { promises as fs } from 'node:fs';
import type { Server } from 'node:http';
import net, { type Socket } from 'node:net';
import path from 'node:path';
import { peerCredentials, type PeerCredentials } from './peer-credentials.js';

/** Who connected, as the kernel named them, or why that could not be learnt. */
export type AdminPeer = PeerCredentials | { error: string };

/** What the admin app is handed with each request, besides Node's own request and response. */
export interface AdminBindings {
  peer?: AdminPeer;
}

export interface AdminSocket {
  close(): Promise<void>;
  /** Why the server cannot identify its own connection to the socket, or null when it can. */
  unidentified: string | null;
}

export interface AdminSocketOptions {
  /** How a connection's peer is identified (the kernel's SO_PEERCRED by default). */
  identify?: (socket: Socket) => Promise<PeerCredentials>;
}

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
 * The socket's directory must be one nobody else can write: whoever can
 * rename entries there could put a socket of their own in its place and
 * collect what administrators send (passwords, with `user add`).
 */
async function checkDirectory(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fs.stat(dir);
  const me = process.geteuid?.() ?? st.uid;
  const sticky = (st.mode & 0o1000) !== 0;
  if (st.uid !== me && st.uid !== 0) throw new Error(`admin socket directory ${dir} belongs to uid ${st.uid}, not to this server's user (uid ${me}): set JIT_SSH_ADMIN_SOCKET to a directory of its own`);
  if ((st.mode & 0o022) !== 0 && !sticky) throw new Error(`admin socket directory ${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)}): they could replace the socket; set JIT_SSH_ADMIN_SOCKET to a directory only this user can write`);
}

/**
 * Serves `fetch` on a Unix socket created with mode 0600 (umask set around
 * bind, so there is no moment when others could connect). A socket left by a
 * crashed server is replaced; one that still answers belongs to a running
 * server, and starting is refused; anything else at the path is left alone.
 *
 * Each connection's peer is identified as it is accepted, before a byte of
 * it is read, and every request on it carries that identity (`peer`) to
 * `fetch`, which decides. Who the client says it is plays no part.
 */
export async function listenAdminSocket(file: string, fetch: (req: Request, env: AdminBindings) => Response | Promise<Response>, opts: AdminSocketOptions = {}): Promise<AdminSocket> {
  const identify = opts.identify ?? ((s: Socket) => peerCredentials(s));
  await checkDirectory(path.dirname(file));
  if (await socketAnswers(file)) throw new Error(`admin socket ${file} is in use by another jit-ssh-ca; stop it or set JIT_SSH_ADMIN_SOCKET`);
  const existing = await fs.lstat(file).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)));
  if (existing && !existing.isSocket()) throw new Error(`${file} exists and is not a socket; the admin socket will not replace it (set JIT_SSH_ADMIN_SOCKET)`);
  await fs.rm(file, { force: true });

  const peers = new WeakMap<Socket, Promise<AdminPeer>>();
  const server = createAdaptorServer({
    fetch: async (req, env) => {
      const peer = (await peers.get(env.incoming.socket as Socket)) ?? { error: 'the connection was never identified' };
      return fetch(req, { ...env, peer });
    },
  }) as Server;
  // Ahead of the HTTP server's own listener, so nothing is parsed before the peer is asked for.
  server.prependListener('connection', (socket: Socket) => {
    peers.set(socket, identify(socket).catch((e: Error) => ({ error: e.message })));
  });

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

  // The server connects once itself: if it cannot name even its own user, every admin request will be refused.
  const unidentified = await new Promise<string | null>((resolve, reject) => {
    server.once('connection', (socket: Socket) => {
      void peers.get(socket)!.then((p) => {
        probe.destroy();
        resolve('error' in p ? p.error : null);
      });
    });
    const probe = net.connect(file);
    probe.once('error', reject);
  });
  return {
    unidentified,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fs.rm(file, { force: true });
    },
  };
}
