// Webhook delivery against a real local HTTP receiver.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/log.js';
import { createNotifier, enqueue, MAX_ATTEMPTS, slack } from '../../src/services/notify.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { TestClock } from '../helpers/clock.js';
import { identity } from '../helpers/identity.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A receiver that answers each POST with the next status in `plan` (then 200). */
async function receiver(plan: number[] = []) {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.statusCode = plan.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  after(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

/** What a chat receiver would read as markup in Slack's message formatting: <…> (mentions, links) and a raw & (entities). */
const MARKUP = /[<>]|&(?!(amp|lt|gt);)/;

// Hostile text a requester or an approver controls, as it would ping a channel or render a spoofed link.
const HOSTILE = {
  reason: 'deploy <!channel> & see <https://evil.example/login|the runbook> <@U012AB3CD> &lt;',
  comment: 'no <!here>, <https://evil.example|click here> & <#C123|general>',
  role: '<!everyone>',
};

const SECRET = Buffer.from('a-webhook-secret-of-some-length');
const sample = { event: 'request.created' as const, actor: 'eng', notify: ['group:sre-leads', 'user:eng'], text: 'eng asks for web-prod for 2h', request: { id: 'R1', role: 'web-prod' } };

for (const backend of BACKENDS) {
  describe(`webhooks (${backend.name})`, () => {
    let t: TestDb;
    before(async () => {
      t = await backend.open();
    });
    after(() => t.cleanup());

    test('ok: the body is signed (HMAC-SHA256 over timestamp.body), Slack-compatible, and never notifies the actor', async () => {
      const clock = new TestClock();
      const rx = await receiver();
      await enqueue(t.db, [{ url: rx.url, events: ['request.created'] }, { url: rx.url, events: ['request.approved'] }], sample, clock.now());
      const notifier = createNotifier({ db: t.db, secret: SECRET, logger: silentLogger, now: clock.now });
      assert.equal(await notifier.deliverDue(), 1, 'only the subscribed webhook gets the event');
      assert.equal(rx.got.length, 1);
      const { headers, body } = rx.got[0]!;
      const expected = createHmac('sha256', SECRET).update(`${headers['x-jit-ssh-timestamp']}.${body}`).digest('hex');
      assert.equal(headers['x-jit-ssh-signature'], `sha256=${expected}`);
      assert.equal(headers['x-jit-ssh-event'], 'request.created');
      const parsed = JSON.parse(body);
      assert.equal(parsed.text, 'eng asks for web-prod for 2h');
      assert.deepEqual(parsed.notify, ['group:sre-leads']);
      const row = await t.db.selectFrom('notifications').selectAll().where('url', '=', rx.url).executeTakeFirstOrThrow();
      assert.equal(row.status, 'delivered');
      assert.equal(row.attempts, 1);
      assert.equal(await notifier.deliverDue(), 0, 'a delivered notification is not sent again');
    });

    test('ok: a failing receiver is retried with backoff until it answers; attempts and errors are recorded', async () => {
      const clock = new TestClock();
      const rx = await receiver([500, 503]);
      await enqueue(t.db, [{ url: rx.url, events: ['request.created'] }], sample, clock.now());
      const notifier = createNotifier({ db: t.db, secret: SECRET, logger: silentLogger, now: clock.now });
      assert.equal(await notifier.deliverDue(), 1);
      const row = () => t.db.selectFrom('notifications').selectAll().where('url', '=', rx.url).executeTakeFirstOrThrow();
      assert.deepEqual([(await row()).status, (await row()).attempts, (await row()).last_error], ['pending', 1, 'HTTP 500']);
      assert.equal(await notifier.deliverDue(), 0, 'not before the backoff has passed');
      clock.advance(2);
      assert.equal(await notifier.deliverDue(), 1);
      assert.equal((await row()).last_error, 'HTTP 503');
      clock.advance(4);
      await notifier.deliverDue();
      assert.deepEqual([(await row()).status, (await row()).attempts], ['delivered', 3]);
      assert.equal(rx.got.length, 3);
    });

    test('fail: an unreachable receiver is given up after the last attempt, and marked failed', async () => {
      const clock = new TestClock();
      const url = 'http://127.0.0.1:47/unreachable';
      await enqueue(t.db, [{ url, events: ['request.created'] }], sample, clock.now());
      const notifier = createNotifier({ db: t.db, secret: null, logger: silentLogger, now: clock.now, backoff: () => 1 });
      for (let i = 0; i < MAX_ATTEMPTS + 2; i++) {
        await notifier.deliverDue();
        clock.advance(61); // past the backoff and any lease
      }
      const row = await t.db.selectFrom('notifications').selectAll().where('url', '=', url).executeTakeFirstOrThrow();
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts, MAX_ATTEMPTS);
      assert.ok(row.last_error);
    });

    test('ok: two workers (instances) never deliver the same notification twice', async () => {
      const clock = new TestClock();
      const rx = await receiver();
      for (let i = 0; i < 10; i++) await enqueue(t.db, [{ url: rx.url, events: ['request.created'] }], { ...sample, text: `n${i}` }, clock.now());
      const a = createNotifier({ db: t.db, secret: SECRET, logger: silentLogger, now: clock.now });
      const b = createNotifier({ db: t.db, secret: SECRET, logger: silentLogger, now: clock.now });
      await Promise.all([a.deliverDue(), b.deliverDue(), a.deliverDue(), b.deliverDue()]);
      const texts = rx.got.map((g) => JSON.parse(g.body).text).sort();
      assert.deepEqual(texts, Array.from({ length: 10 }, (_, i) => `n${i}`).sort());
    });

    test('fail-chat-injection: reasons, comments and role names reach the `text` escaped (&amp; &lt; &gt;), the JSON fields as written', async () => {
      const clock = new TestClock();
      const rx = await receiver();
      const id = await identity(t.db, clock, { lockoutThreshold: 100 }, { policy: WORKFLOW_POLICY.replace('http://127.0.0.1:9/hook', rx.url) });
      const eng = await id.as(await id.addUser('mallory', ['engineering']));
      const lead = await id.as(await id.addUser('lead-x', ['sre-leads']));
      const filed = await eng('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: HOSTILE.reason });
      assert.equal(filed.status, 201, JSON.stringify(filed.body));
      assert.equal((await lead('POST', `/v1/requests/${filed.body.id}/deny`, { comment: HOSTILE.comment })).status, 200);
      const unknown = await eng('POST', '/v1/requests', { role: HOSTILE.role, duration: '1h', reason: HOSTILE.reason });
      assert.equal(unknown.body.status, 'denied');

      const notifier = createNotifier({ db: t.db, secret: SECRET, logger: silentLogger, now: clock.now });
      assert.equal(await notifier.deliverDue(), 3);
      const bodies = rx.got.map((g) => JSON.parse(g.body));
      assert.deepEqual(bodies.map((b) => b.event).sort(), ['request.created', 'request.denied', 'request.denied']);
      for (const b of bodies) {
        assert.doesNotMatch(b.text, MARKUP, `markup in the text of ${b.event}: ${b.text}`);
        assert.equal(b.request.reason, HOSTILE.reason, 'the JSON field keeps what the requester wrote');
      }
      const created = bodies.find((b) => b.event === 'request.created');
      assert.match(created.text, /deploy &lt;!channel&gt; &amp; see &lt;https:\/\/evil\.example\/login\|the runbook&gt; &lt;@U012AB3CD&gt; &amp;lt;/);
      const byLead = bodies.find((b) => b.event === 'request.denied' && b.actor === 'lead-x');
      assert.match(byLead.text, /: no &lt;!here&gt;, &lt;https:\/\/evil\.example\|click here&gt; &amp; &lt;#C123\|general&gt;$/);
      const unknownRole = bodies.find((b) => b.request.role === HOSTILE.role);
      assert.ok(unknownRole, 'the unknown role is in the JSON as written');
      assert.match(unknownRole.text, /asks for &lt;!everyone&gt; for 1h/);
    });

    test("ok: enqueue escapes a plain text whole; markup of the product's own (slack`…`) keeps working around escaped values", async () => {
      const clock = new TestClock();
      const rx = await receiver();
      const hook = [{ url: rx.url, events: ['request.created' as const] }];
      await enqueue(t.db, hook, { ...sample, text: 'a < b && c > d' }, clock.now());
      await enqueue(t.db, hook, { ...sample, text: slack`<https://ca.example/ui/requests/${'R1'}|request ${'R1'}>: ${HOSTILE.reason}` }, clock.now());
      await createNotifier({ db: t.db, secret: null, logger: silentLogger, now: clock.now }).deliverDue();
      const texts = rx.got.map((g) => JSON.parse(g.body).text).sort();
      assert.deepEqual(texts, [
        '<https://ca.example/ui/requests/R1|request R1>: deploy &lt;!channel&gt; &amp; see &lt;https://evil.example/login|the runbook&gt; &lt;@U012AB3CD&gt; &amp;lt;',
        'a &lt; b &amp;&amp; c &gt; d',
      ]);
    });
  });
}
