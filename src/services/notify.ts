// Outgoing webhooks. A notification is written to the `notifications` table in
// the same transaction as the change it reports (an outbox), and a worker
// delivers it later with retries: a slow or failing receiver never blocks or
// fails a request, and nothing is lost when the server restarts.
//
// Each POST carries a JSON body with a Slack-compatible `text` (a Slack
// incoming webhook shows it as is) and, when a secret is configured,
//   X-Jit-Ssh-Timestamp: <unix seconds>
//   X-Jit-Ssh-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//
// The text holds what requesters and approvers wrote (reasons, comments, role
// names), so it is escaped as Slack's message formatting requires (&amp; &lt;
// &gt;): otherwise a reason could ping <!channel> or show a spoofed
// <https://evil|link>. The JSON fields beside it carry the values as written.

import { createHmac } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { NotificationEvent, WebhookTarget } from '../core/policy-types.js';
import { claimDueNotifications, insertNotifications, markAttemptFailed, markDelivered } from '../db/notifications.js';
import type { Database, NotificationRow } from '../db/schema.js';
import type { Logger } from '../log.js';
import { every, type Periodic } from './periodic.js';

export const MAX_ATTEMPTS = 8;
const LEASE_SECONDS = 60;
const TIMEOUT_MS = 5_000;

/** Text already in Slack's message formatting: markup the product writes, with every value escaped. */
export interface SlackText {
  readonly slack: string;
}

/** Escapes plain text for Slack's message formatting: only &, < and > have meaning there. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A text with markup of the product's own (a link `<${url}|…>`, a mention) around values that are
 * escaped: slack`<${url}|request ${id}>: ${reason}` keeps the link and defuses the reason.
 */
export function slack(literals: TemplateStringsArray, ...values: unknown[]): SlackText {
  return { slack: literals.reduce((out, lit, i) => out + lit + (i < values.length ? escapeSlack(String(values[i])) : ''), '') };
}

export interface Notification {
  event: NotificationEvent;
  /** Who caused it (never among `notify`). */
  actor: string;
  /** People and groups who should hear of it, as `user:NAME` / `group:NAME`. */
  notify: string[];
  /** Plain text (escaped here, whole), or markup built with `slack`. */
  text: string | SlackText;
  request: Record<string, unknown>;
}

export function signature(secret: Buffer, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** Queues `n` for every webhook subscribed to its event, inside the caller's transaction. */
export async function enqueue(trx: Transaction<Database> | Kysely<Database>, webhooks: readonly WebhookTarget[], n: Notification, now: Date): Promise<void> {
  const targets = webhooks.filter((w) => w.events.includes(n.event));
  if (targets.length === 0) return;
  const notify = n.notify.filter((who) => who !== `user:${n.actor}`);
  const text = typeof n.text === 'string' ? escapeSlack(n.text) : n.text.slack;
  const body = JSON.stringify({ event: n.event, text, actor: n.actor, notify, request: n.request, at: now.toISOString() });
  await insertNotifications(trx, { event: n.event, body, at: now }, targets.map((w) => w.url));
}

export interface NotifierDeps {
  db: Kysely<Database>;
  secret: Buffer | null;
  logger: Logger;
  now?: () => Date;
  fetch?: typeof fetch;
  /** Seconds before retry n (1-based); default 2^n, so 2 s ... 4 min over 8 attempts. */
  backoff?: (attempt: number) => number;
}

export interface Notifier {
  /** Delivers what is due now; returns how many were attempted. */
  deliverDue(): Promise<number>;
  start(intervalMs?: number): void;
  stop(): Promise<void>;
}

export function createNotifier(deps: NotifierDeps): Notifier {
  const now = deps.now ?? (() => new Date());
  const doFetch = deps.fetch ?? fetch;
  const backoff = deps.backoff ?? ((n: number) => 2 ** n);
  let worker: Periodic | undefined;

  /** Takes due rows with a lease, so two instances never send the same one at once. */
  async function claim(at: Date): Promise<NotificationRow[]> {
    const lease = new Date(at.getTime() + LEASE_SECONDS * 1000);
    return claimDueNotifications(deps.db, at, lease, 20);
  }

  async function send(row: NotificationRow): Promise<void> {
    const timestamp = String(Math.floor(now().getTime() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'jit-ssh',
      'x-jit-ssh-event': row.event,
      'x-jit-ssh-delivery': String(row.id),
      'x-jit-ssh-timestamp': timestamp,
    };
    if (deps.secret) headers['x-jit-ssh-signature'] = signature(deps.secret, timestamp, row.body);
    let error: string | null = null;
    try {
      const res = await doFetch(row.url, { method: 'POST', headers, body: row.body, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'manual' });
      await res.body?.cancel();
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (e) {
      error = (e as Error).name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS} ms` : (e as Error).message;
    }
    const attempts = row.attempts + 1;
    const at = now();
    if (error === null) {
      await markDelivered(deps.db, row.id, attempts, at);
      return;
    }
    const failed = attempts >= MAX_ATTEMPTS;
    await markAttemptFailed(deps.db, row.id, { attempts, error, final: failed, retryAt: new Date(at.getTime() + backoff(attempts) * 1000) });
    (failed ? deps.logger.warn : deps.logger.info)(failed ? 'webhook delivery failed for good' : 'webhook delivery failed; will retry', {
      notification: row.id,
      event: row.event,
      attempts,
      detail: error,
    });
  }

  async function deliverDue(): Promise<number> {
    const rows = await claim(now());
    await Promise.all(rows.map(send));
    return rows.length;
  }

  return {
    deliverDue,
    start(intervalMs = 1000) {
      worker ??= every('webhook worker', intervalMs, deliverDue, deps.logger);
    },
    async stop() {
      await worker?.stop();
    },
  };
}
