// Who is on the other end of an accepted Unix socket, as the kernel says:
// SO_PEERCRED, the credentials the peer had when it called connect(2), which
// it cannot choose or forge. Node has no API for getsockopt, so a one-line
// Perl program (perl-base is part of every Debian and Ubuntu system, the
// container image included) is handed the socket as its stdin, asks the
// kernel, and looks the uid up in the passwd database (NSS, as `id` would).
// Anything short of a clean answer is an error: the caller then refuses.

import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';

export interface PeerCredentials {
  uid: number;
  pid: number;
  /** The passwd database's name for the uid; null when it has none. */
  name: string | null;
}

const PEERCRED = [
  'use Socket;',
  'my $c = getsockopt(STDIN, SOL_SOCKET, SO_PEERCRED) or die "getsockopt SO_PEERCRED: $!\\n";',
  'my ($pid, $uid) = unpack("lL", $c);',
  'my $name = getpwuid($uid);',
  'print join("\\t", $uid, $pid, defined $name ? $name : ""), "\\n";',
].join(' ');

const ANSWER = /^(\d{1,10})\t(\d{1,10})\t([^\t\n]{0,256})\n$/;

export interface PeerOptions {
  /** The Perl interpreter, looked up on PATH by default. */
  perl?: string;
  timeoutMs?: number;
}

/**
 * The credentials of `socket`'s peer. Node pauses a socket it lends a child
 * as stdio; it is resumed once the child is done, whatever the outcome, so a
 * refused caller still gets its answer.
 */
export function peerCredentials(socket: Socket, opts: PeerOptions = {}): Promise<PeerCredentials> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    let settled = false;
    const finish = (e: Error | null, v?: PeerCredentials) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!socket.destroyed) socket.resume();
      if (e) reject(e);
      else resolve(v!);
    };
    const child = spawn(opts.perl ?? 'perl', ['-e', PEERCRED], { stdio: [socket, 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error('the SO_PEERCRED helper did not answer in time'));
    }, opts.timeoutMs ?? 5000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) => finish(new Error(e.code === 'ENOENT' ? `${opts.perl ?? 'perl'} not found on the server's PATH; it reads SO_PEERCRED` : `SO_PEERCRED helper: ${e.message}`)));
    child.on('close', (code) => {
      const m = ANSWER.exec(out);
      if (code !== 0 || !m) return finish(new Error(`SO_PEERCRED helper: ${err.trim().split('\n')[0] || `exit ${code}, answer ${JSON.stringify(out.slice(0, 80))}`}`));
      finish(null, { uid: Number(m[1]), pid: Number(m[2]), name: m[3] || null });
    });
  });
}
