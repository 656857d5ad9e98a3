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

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const min = ORDER[level];
  const emit = (lvl: LogLevel) => (msg: string, fields: Fields = {}) => {
    if (ORDER[lvl] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** An error's name and message, without the stack unless asked (stacks can hold paths, never secrets). */
export function errorFields(err: unknown, stack = false): Fields {
  if (err instanceof Error) return { error: err.name, detail: err.message, ...(stack ? { stack: err.stack } : {}) };
  return { error: String(err) };
}
