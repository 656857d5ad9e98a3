import type { Context } from 'hono';
import { HttpProblem } from './problem.js';

/** The request body as a JSON object, or a 400 problem saying what is wrong with it. */
export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new HttpProblem(400, 'Bad Request', 'the request body must be a JSON object');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpProblem(400, 'Bad Request', 'the request body must be a JSON object');
  return body as Record<string, unknown>;
}
