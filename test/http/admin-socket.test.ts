// The admin socket itself: who is on the other end comes from the kernel
// (SO_PEERCRED), for real client processes; the socket's directory and path
// are checked before anything is created or removed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { listenAdminSocket, type AdminBindings } from '../../src/http/admin-socket.js';
import { peerCredentials } from '../../src/http/peer-credentials.js';
import { tempDir } from '../helpers/keys.js';

/** Echoes the peer the socket vouched for, and how much body it read. */
async function echo(req: Request, env: AdminBindings): Promise<Response> {
  const body = await req.text();
  return Response.json({ peer: env.peer, body: body.length, path: new URL(req.url).pathname });
}

/** A separate Node process that sends `count` requests over one kept-alive connection and prints the answers. */
function client(sock: string, count: number, as: { uid?: number; gid?: number } = {}): Promise<{ pid: number; answers: Array<Record<string, unknown>> }> {
  const script = `
    const http = require('http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    (async () => {
      const out = [];
      for (let i = 0; i < ${count}; i++) {
        out.push(await new Promise((resolve, reject) => {
          const req = http.request({ socketPath: ${JSON.stringify(sock)}, method: 'POST', path: '/r' + i, agent, headers: { 'X-Jit-Ssh-Actor': 'os:carol-the-auditor' } }, (res) => {
            let t = ''; res.on('data', (d) => (t += d)); res.on('end', () => resolve(JSON.parse(t)));
          });
          req.on('error', reject);
          req.end('x'.repeat(300000));
        }));
      }
      agent.destroy();
      console.log(JSON.stringify(out));
    })();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], ...as });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ pid: child.pid!, answers: JSON.parse(out) }) : reject(new Error(`client exited ${code}`))));
  });
}

test('ok: a real client process is named by the kernel (its own pid and uid), once per connection, from its first request on; a kept-alive connection and large bodies work', async () => {
  const sock = path.join(tempDir(), 'admin.sock');
  let identified = 0;
  const admin = await listenAdminSocket(sock, echo, { identify: (s) => (identified++, peerCredentials(s)) });
  try {
    assert.equal(admin.unidentified, null);
    identified = 0; // the server's own check at start
    const { pid, answers } = await client(sock, 3);
    assert.equal(identified, 1, 'one connection, asked once');
    const uid = process.geteuid!();
    const name = os.userInfo().username;
    assert.deepEqual(answers, [0, 1, 2].map((i) => ({ peer: { uid, pid, name }, body: 300000, path: `/r${i}` })));
  } finally {
    await admin.close();
  }
});

test("ok: another user is named as such, with the passwd database's name, or none for a uid it does not know", { skip: process.geteuid?.() === 0 ? false : 'needs root, to run clients as other users' }, async () => {
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const sock = path.join(dir, 'admin.sock');
  const admin = await listenAdminSocket(sock, echo);
  try {
    chmodSync(sock, 0o666);
    const taken = new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => Number(l.split(':')[2])));
    let nameless = 4343;
    while (taken.has(nameless)) nameless++;
    const nobody = await client(sock, 1, { uid: 65534, gid: 65534 });
    assert.deepEqual(nobody.answers[0]!['peer'], { uid: 65534, pid: nobody.pid, name: 'nobody' });
    const none = await client(sock, 1, { uid: nameless, gid: nameless });
    assert.deepEqual(none.answers[0]!['peer'], { uid: nameless, pid: none.pid, name: null });
  } finally {
    await admin.close();
  }
});

test('fail-closed: when the kernel cannot be asked, every request carries the reason instead of a peer, and the start says so', async () => {
  const sock = path.join(tempDir(), 'admin.sock');
  const admin = await listenAdminSocket(sock, echo, { identify: (s) => peerCredentials(s, { perl: '/nonexistent/perl' }) });
  try {
    assert.match(admin.unidentified ?? '', /\/nonexistent\/perl not found/);
    const { answers } = await client(sock, 2);
    for (const a of answers) assert.deepEqual(a['peer'], { error: admin.unidentified });
  } finally {
    await admin.close();
  }
});

test('fail: the socket is never put in a directory others can write or that another user owns, and a file that is not a socket is never replaced', async () => {
  const open = path.join(tempDir(), 'shared');
  mkdirSync(open, { mode: 0o700 });
  chmodSync(open, 0o777);
  await assert.rejects(listenAdminSocket(path.join(open, 'admin.sock'), echo), /admin socket directory .*shared is writable by others \(mode 777\)/);
  chmodSync(open, 0o1777); // sticky, as /tmp: others cannot rename what is ours
  const sticky = await listenAdminSocket(path.join(open, 'admin.sock'), echo);
  await sticky.close();

  if (process.geteuid?.() === 0) {
    const theirs = path.join(tempDir(), 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    await assert.rejects(listenAdminSocket(path.join(theirs, 'admin.sock'), echo), /belongs to uid 65534, not to this server's user/);
  }

  const dir = tempDir();
  const file = path.join(dir, 'admin.sock');
  writeFileSync(file, 'precious');
  await assert.rejects(listenAdminSocket(file, echo), /exists and is not a socket; the admin socket will not replace it/);
  assert.equal(readFileSync(file, 'utf8'), 'precious');
});
