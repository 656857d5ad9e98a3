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

/**
 * A body that could not be read to its end: the client closed the connection
 * part way. Its fault, not the server's: a 400, and no error in the log.
 */
export function unreadableBody(): HttpProblem {
  return new HttpProblem(400, 'Bad Request', 'the request body could not be read to its end: the connection was closed');
}
