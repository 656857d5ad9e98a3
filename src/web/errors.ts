// A refusal the web pages show as a page of its own: the status and one
// sentence for a person. Never a stack trace, never an internal message.

import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { Refusal } from '../core/error-status.js';

export class WebError extends Refusal {
  override name = 'WebError';
  constructor(
    override readonly status: ContentfulStatusCode,
    message: string,
  ) {
    super(status, message);
  }
}

/** An error as the pages are told of it: what the API would answer, and whether its words are for a person. */
export interface PageError {
  status: ContentfulStatusCode;
  detail: string;
  /** `detail` is a sentence meant for the caller (a refusal), not the framework's words or a failure's. */
  refusal: boolean;
  /** A sentence for a person, where the pages word a refusal apart from the API. */
  page?: string;
  /** Retry-After, when the error says how long to wait. */
  headers: Record<string, string>;
}

/** The one sentence a page shows for an error. */
export function pageMessage(e: PageError): string {
  if (e.page !== undefined) return e.page;
  if (e.refusal) return e.detail;
  return e.status >= 500 ? 'Something went wrong on the server. It has been logged; please try again.' : 'The request was refused.';
}
