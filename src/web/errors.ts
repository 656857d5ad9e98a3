// A refusal the web pages show as a page of its own: the status and one
// sentence for a person. Never a stack trace, never an internal message.

import type { ContentfulStatusCode } from 'hono/utils/http-status';

export class WebError extends Error {
  override name = 'WebError';
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
  ) {
    super(message);
  }
}
