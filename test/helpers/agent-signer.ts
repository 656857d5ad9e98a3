// A CA Signer whose private key lives in another process: ssh-agent, spoken
// to over its socket (draft-miller-ssh-agent). It is what a KMS or HSM Signer
// looks like: the public key blob is fetched once, and each sign() is a
// request that returns an SSH signature blob. (ssh-agent also fronts real
// HSMs and smart cards: `ssh-add -s /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so`.)

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sshFingerprint } from '../../src/ssh/pubkey.js';
import type { CaKeyType, Signer } from '../../src/ssh/signer.js';
import { SshReader, SshWriter } from '../../src/ssh/wire.js';

const REQUEST_IDENTITIES = 11;
const IDENTITIES_ANSWER = 12;
const SIGN_REQUEST = 13;
const SIGN_RESPONSE = 14;
/** Ask for rsa-sha2-512 rather than SHA-1 ssh-rsa, which sshd refuses. */
const RSA_SHA2_512 = 4;

/** One request/answer exchange on a fresh connection (so concurrent signs never interleave). */
function exchange(socket: string, type: number, payload: Buffer): Promise<{ type: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socket);
    const chunks: Buffer[] = [];
    conn.on('error', reject);
    conn.on('data', (d) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= 4 && all.length >= 4 + all.readUInt32BE(0)) {
        conn.end();
        resolve({ type: all[4]!, body: all.subarray(5, 4 + all.readUInt32BE(0)) });
      }
    });
    const msg = Buffer.concat([Buffer.from([type]), payload]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(msg.length);
    conn.write(Buffer.concat([len, msg]));
  });
}

/** A Signer over the first key the agent at `socket` holds. `signs` counts the signatures it made. */
export async function agentSigner(socket: string): Promise<Signer & { signs: number }> {
  const ids = await exchange(socket, REQUEST_IDENTITIES, Buffer.alloc(0));
  if (ids.type !== IDENTITIES_ANSWER) throw new Error(`ssh-agent answered ${ids.type} to a list request`);
  const r = new SshReader(ids.body);
  if (r.uint32('count') < 1) throw new Error('ssh-agent holds no key');
  const blob = r.string('key blob');
  const keyType = new SshReader(blob).text('key type') as CaKeyType;
  const signer = {
    keyType,
    publicKeyBlob: blob,
    fingerprint: sshFingerprint(blob),
    signs: 0,
    async sign(data: Buffer): Promise<Buffer> {
      const req = new SshWriter().string(blob).string(data).uint32(keyType === 'ssh-rsa' ? RSA_SHA2_512 : 0).toBuffer();
      const res = await exchange(socket, SIGN_REQUEST, req);
      if (res.type !== SIGN_RESPONSE) throw new Error(`ssh-agent refused to sign (answer ${res.type})`);
      signer.signs++;
      return new SshReader(res.body).string('signature');
    },
  };
  return signer;
}

export interface Agent {
  socket: string;
  child: ChildProcess;
  stop(): void;
}

/** Starts an ssh-agent on a socket in `dir` holding the private key `keyFile`. */
export async function startAgent(dir: string, keyFile: string): Promise<Agent> {
  const socket = path.join(dir, 'agent.sock');
  const child = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(20);
  execFileSync('ssh-add', ['-q', keyFile], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
  return { socket, child, stop: () => void child.kill() };
}
