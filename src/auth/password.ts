// Password hashing with scrypt (memory-hard, in node:crypto: no native
// dependency to build). The hash string carries its parameters, so the cost
// can be raised later and old hashes are upgraded at the next login.
//   $scrypt$ln=16,r=8,p=1$<salt base64>$<hash base64>

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { UnavailableError } from '../core/errors.js';

export const MIN_PASSWORD_LENGTH = 12;
/** Long passphrases are welcome; the cap only bounds the work an attacker can ask for. */
export const MAX_PASSWORD_BYTES = 1024;

const KEY_LENGTH = 32;
const R = 8;
const P = 1;

export interface PasswordParams {
  ln: number;
  r: number;
  p: number;
}

// Each hash holds 128*r*N bytes for ~0.2 s; two at a time bound the memory
// (2 × 64 MiB at the default cost) and leave libuv threads for signing.
const CONCURRENCY = 2;
let running = 0;
let derived = 0;
/** How long one derivation took lately (ms, a moving average): what a wait in the queue is estimated by. */
let typicalMs = 200;
const waiting: Array<() => void> = [];

/** The queue in front of the password work is full: refused at once rather than waiting behind it. */
export class PasswordQueueFullError extends UnavailableError {
  override name = 'PasswordQueueFullError';
}

async function limited<T>(fn: () => Promise<T>, maxWaiting: number): Promise<T> {
  if (running >= CONCURRENCY) {
    if (waiting.length >= maxWaiting) {
      const drainSeconds = Math.ceil(((waiting.length / CONCURRENCY + 1) * typicalMs) / 1000);
      throw new PasswordQueueFullError('the server is busy checking other logins; try again shortly', Math.max(1, drainSeconds));
    }
    // The slot is handed over by the one finishing: no newcomer can take it in between.
    await new Promise<void>((r) => waiting.push(r));
  } else running++;
  derived++;
  const started = performance.now();
  try {
    return await fn();
  } finally {
    typicalMs = 0.8 * typicalMs + 0.2 * (performance.now() - started);
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/** The password work of this process: derivations begun so far, running and waiting now. */
export function passwordWork(): { derived: number; running: number; waiting: number } {
  return { derived, running, waiting: waiting.length };
}

/** Whether a derivation asked for now would have to wait: every slot is taken. */
export function passwordWorkBusy(): boolean {
  return running + waiting.length >= CONCURRENCY;
}

/** Options of a password check. */
export interface VerifyOptions {
  /** Refuse (PasswordQueueFullError) instead of queueing when this many checks already wait; default: always queue. */
  maxWaiting?: number;
}

function derive(password: string, salt: Buffer, params: PasswordParams, keyLength: number, maxWaiting = Infinity): Promise<Buffer> {
  const N = 2 ** params.ln;
  return limited(
    () =>
      new Promise((resolve, reject) =>
        scrypt(password.normalize('NFC'), salt, keyLength, { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 1024 * 1024 }, (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      ),
    maxWaiting,
  );
}

/** Why a password is not acceptable, or null when it is. */
export function passwordProblem(password: string): string | null {
  if (typeof password !== 'string') return 'password must be a string';
  if ([...password].length < MIN_PASSWORD_LENGTH) return `password must be at least ${MIN_PASSWORD_LENGTH} characters`;
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return `password must be at most ${MAX_PASSWORD_BYTES} bytes`;
  return null;
}

export async function hashPassword(password: string, cost: number): Promise<string> {
  const salt = randomBytes(16);
  const params = { ln: cost, r: R, p: P };
  const key = await derive(password, salt, params, KEY_LENGTH);
  return `$scrypt$ln=${cost},r=${R},p=${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

function parse(hash: string): { params: PasswordParams; salt: Buffer; key: Buffer } | null {
  const m = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  if (!m) return null;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (params.ln < 10 || params.ln > 22 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16) return null;
  return { params, salt: Buffer.from(m[4]!, 'base64'), key: Buffer.from(m[5]!, 'base64') };
}

export interface PasswordCheck {
  ok: boolean;
  /** The hash is weaker than the current cost: store a new one now that the password is known. */
  needsRehash: boolean;
}

/** Compares in constant time; an unparsable hash never matches. */
export async function verifyPassword(hash: string, password: string, cost: number, opts: VerifyOptions = {}): Promise<PasswordCheck> {
  const parsed = parse(hash);
  if (!parsed || typeof password !== 'string' || Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
    // Spend the same work as a real check so the answer's timing tells nothing.
    await derive(typeof password === 'string' ? password.slice(0, MAX_PASSWORD_BYTES) : '', randomBytes(16), { ln: cost, r: R, p: P }, KEY_LENGTH, opts.maxWaiting);
    return { ok: false, needsRehash: false };
  }
  const key = await derive(password, parsed.salt, parsed.params, parsed.key.length, opts.maxWaiting);
  const ok = key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
  return { ok, needsRehash: ok && (parsed.params.ln < cost || parsed.params.r < R) };
}
