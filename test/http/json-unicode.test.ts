// JSON bodies may escape half a surrogate pair ("\udfff"), which no UTF-8 text
// holds and the database refuses: such a body is the client's mistake, a 400,
// on every route that reads JSON, before anything is stored.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hono } from 'hono';
import { jsonBody } from '../../src/http/json.js';
import { answerErrors } from '../../src/http/problem.js';
import { silentLogger } from '../../src/log.js';
import type { AppEnv } from '../../src/http/types.js';

const app = new Hono<AppEnv>();
app.onError(answerErrors({ logger: silentLogger, failure: 'request failed' }));
app.post('/echo', async (c) => c.json(await jsonBody(c)));
const post = (raw: string) => app.request('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });

test('fail: a lone surrogate in a value, nested, or in a name is a 400 naming it', async () => {
  for (const raw of ['{"reason":"\\udfff"}', '{"a":{"b":["ok","x\\ud800"]}}', '{"\\udc00":1}', '{"r":"\\ud83d"}']) {
    const res = await post(raw);
    assert.equal(res.status, 400, raw);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.match(((await res.json()) as { detail: string }).detail, /not valid Unicode/);
  }
});

test('ok: proper pairs, astral characters and other text pass as sent', async () => {
  const body = { reason: 'deploy 🚀 \u{1F600} ü \u202e', n: 1, list: ['\ud83d\ude00'] };
  const res = await post(JSON.stringify(body));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), body);
});
