// Structured logs: one JSON object per line. Callers pass fields explicitly;
// nothing logs request bodies, headers, tokens, passwords or key material.

import type { LogLevel } from './config.js';

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** How long a line may wait for the lines after it, and how much may wait. */
const FLUSH_MS = 25;
const FLUSH_BYTES = 64 * 1024;

/**
 * Lines for stdout, written together: one write system call for every line of
 * the last FLUSH_MS (or FLUSH_BYTES, whichever comes first) instead of one per
 * line or per turn of the event loop — writes to a file or pipe are
 * synchronous, and under load they were a tenth of the server's CPU per
 * request. What is still buffered when the process exits is written then
 * (an exit on a signal or an uncaught error included; only SIGKILL loses it).
 */
export function bufferedStdout(write: (text: string) => void = (text) => process.stdout.write(text)): (line: string) => void {
  let buffer: string[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (buffer.length === 0) return;
    const text = buffer.join('');
    buffer = [];
    bytes = 0;
    write(text);
  };
  process.once('exit', flush);
  return (text) => {
    buffer.push(text);
    bytes += text.length;
    if (bytes >= FLUSH_BYTES) flush();
    else if (!timer) (timer = setTimeout(flush, FLUSH_MS)).unref();
  };
}

const bigintsAsText = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/** JSON of a log record; bigints (serials) as decimal text. Without a replacer first: one makes every line several times slower, and few lines hold a bigint. */
function line(record: Fields): string {
  try {
    return JSON.stringify(record);
  } catch (e) {
    if (e instanceof TypeError) return JSON.stringify(record, bigintsAsText);
    throw e;
  }
}

let stdoutWriter: ((line: string) => void) | undefined;

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (stdoutWriter ??= bufferedStdout())): Logger {
  const min = ORDER[level];
  const emit = (lvl: LogLevel) => (msg: string, fields: Fields = {}) => {
    if (ORDER[lvl] < min) return;
    write(line({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + '\n');
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** An error's name and message, without the stack unless asked (stacks can hold paths, never secrets). */
export function errorFields(err: unknown, stack = false): Fields {
  if (err instanceof Error) return { error: err.name, detail: err.message, ...(stack ? { stack: err.stack } : {}) };
  return { error: String(err) };
}
