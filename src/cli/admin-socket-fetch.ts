// HTTP over the admin socket for the admin client: a fetch that speaks to a
// Unix socket, and the answers read back (a refusal becomes the DomainError
// the server answered with, its detail as the message).

import http from 'node:http';
import { Readable } from 'node:stream';
import { STATUS_OF } from '../core/error-status.js';
import { DomainError, type ErrorCode } from '../core/errors.js';

/** A fetch whose every request goes to the HTTP server on the Unix socket `socketPath` (the URL's host is ignored). */
export function socketFetch(socketPath: string) {
  return (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    new Promise((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const headers = Object.fromEntries(new Headers(init?.headers).entries());
      const req = http.request({ socketPath, method: init?.method ?? 'GET', path: url.pathname + url.search, headers }, (res) => {
        const status = res.statusCode ?? 500;
        const answer = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) answer.set(k, Array.isArray(v) ? v.join(', ') : v);
        const bodiless = status === 204 || status === 304;
        if (bodiless) res.resume();
        resolve(new Response(bodiless ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers: answer }));
      });
      req.on('error', reject);
      req.end(typeof init?.body === 'string' ? init.body : undefined);
    });
}

const CODES = new Set(Object.keys(STATUS_OF));

/** The error a refusal stands for: the code the server gave, else the first with the status, else unavailable. */
async function refusal(res: { status: number; text(): Promise<string> }): Promise<DomainError> {
  let body: { detail?: unknown; code?: unknown } = {};
  try {
    body = JSON.parse(await res.text()) ?? {};
  } catch {
    // Not a problem document: the status says enough.
  }
  const byStatus = (Object.keys(STATUS_OF) as ErrorCode[]).find((c) => STATUS_OF[c] === res.status);
  const code = typeof body.code === 'string' && CODES.has(body.code) ? (body.code as ErrorCode) : (byStatus ?? 'unavailable');
  return new DomainError(code, typeof body.detail === 'string' ? body.detail : `admin socket answered ${res.status}`);
}

interface Answer<T> {
  ok: boolean;
  status: number;
  json(): Promise<T>;
  text(): Promise<string>;
}

/** The JSON of a successful answer; a refusal is thrown. `json` false: an answer without a body (204). */
export async function answered<T>(res: Answer<T>, json?: true): Promise<T>;
export async function answered<T>(res: Answer<T>, json: false): Promise<void>;
export async function answered<T>(res: Answer<T>, json = true): Promise<T | void> {
  if (!res.ok) throw await refusal(res);
  if (json) return res.json();
}

/** A streamed answer, chunk by chunk as text; the request is sent when the first chunk is asked for. */
export async function* streamed(send: () => Promise<{ ok: boolean; status: number; body: ReadableStream | null; text(): Promise<string> }>): AsyncGenerator<string> {
  const res = await send();
  if (!res.ok) throw await refusal(res);
  if (!res.body) return;
  const decoder = new TextDecoder();
  for await (const chunk of res.body as ReadableStream<Uint8Array>) yield decoder.decode(chunk, { stream: true });
  const rest = decoder.decode();
  if (rest) yield rest;
}
