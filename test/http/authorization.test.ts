// Who may call what on the API, by the classes of hole other SSH CAs had:
// administrative actions reachable by a plain user (revocation, the KRL, the
// policy, the audit log), routes or methods that skip the authorization of the
// route they resemble (unknown paths under a guarded prefix, other methods,
// HEAD, trailing slashes, doubled slashes, percent-encoding, case), request
// bodies that name someone else or ask for more than policy gives, self-approval
// from a second session, and acting on someone else's request or grant.
// The web pages have their own table in test/web/authorization.test.ts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseCertificate } from '../../src/ssh/certificate-parse.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { identity, TestClock } from '../helpers/identity.js';
import { tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';

const laptop = userKey(tempDir(), 'ed25519', undefined, 'laptop');

type Who = 'anonymous' | 'eng' | 'auditor' | 'admin';

/** [name, who, method, path, statuses it may answer]: never a 2xx unless the name starts with ok-. */
const ROUTES: Array<[string, Who, string, string, number[]]> = [
  // Administrative actions over HTTP: only the policy reload exists, for administrators.
  ['fail-user-policy-reload', 'eng', 'POST', '/v1/admin/policy/reload', [403]],
  ['fail-auditor-policy-reload', 'auditor', 'POST', '/v1/admin/policy/reload', [403]],
  ['fail-anonymous-policy-reload', 'anonymous', 'POST', '/v1/admin/policy/reload', [401]],
  ['ok-admin-policy-reload', 'admin', 'POST', '/v1/admin/policy/reload', [422]], // reached: this test's reload refuses
  // Revocation and KRL generation exist only on the admin socket (mode 0600): under /v1/admin a user
  // is refused before any lookup, and nothing elsewhere takes them.
  ['fail-user-admin-revocations', 'eng', 'POST', '/v1/admin/revocations', [403]],
  ['fail-user-admin-krl', 'eng', 'POST', '/v1/admin/krl', [403]],
  ['fail-user-admin-users', 'eng', 'POST', '/v1/admin/users', [403]],
  ['fail-admin-revocations-over-http', 'admin', 'POST', '/v1/admin/revocations', [404]],
  ['fail-user-revocations', 'eng', 'POST', '/v1/revocations', [404]],
  ['fail-user-revoke-certificate', 'eng', 'DELETE', '/v1/certificates', [404]],
  ['fail-user-admin-socket-path', 'eng', 'POST', '/admin/revocations', [404]],
  ['fail-user-post-krl', 'eng', 'POST', '/v1/krl', [404]],
  ['fail-user-put-krl', 'eng', 'PUT', '/v1/krl', [404]],
  ['fail-user-put-ca-pub', 'eng', 'PUT', '/v1/ca.pub', [404]],
  ['ok-anonymous-krl', 'anonymous', 'GET', '/v1/krl', [200]],
  ['ok-anonymous-ca-pub', 'anonymous', 'GET', '/v1/ca.pub', [200]],
  // The audit log: auditors and administrators.
  ['fail-user-audit-events', 'eng', 'GET', '/v1/audit/events', [403]],
  ['fail-user-audit-verify', 'eng', 'GET', '/v1/audit/verify', [403]],
  ['fail-user-audit-report', 'eng', 'GET', '/v1/audit/report', [403]],
  ['fail-user-audit-chain', 'eng', 'GET', '/v1/audit/chain', [403]],
  ['fail-user-audit-export', 'eng', 'GET', '/v1/audit/export', [403]],
  ['fail-user-audit-unknown', 'eng', 'GET', '/v1/audit/anything', [403]],
  ['fail-user-certificate-log', 'eng', 'GET', '/v1/certificates', [403]],
  ['fail-anonymous-audit-events', 'anonymous', 'GET', '/v1/audit/events', [401]],
  ['ok-auditor-audit-events', 'auditor', 'GET', '/v1/audit/events', [200]],
  ['ok-admin-audit-events', 'admin', 'GET', '/v1/audit/events', [200]],
  ['ok-auditor-certificate-log', 'auditor', 'GET', '/v1/certificates', [200]],
  // Other methods and spellings of a guarded route never reach its handler unguarded.
  ['fail-user-head-audit-events', 'eng', 'HEAD', '/v1/audit/events', [403]],
  ['fail-user-put-audit-events', 'eng', 'PUT', '/v1/audit/events', [403]],
  ['fail-user-get-policy-reload', 'eng', 'GET', '/v1/admin/policy/reload', [403]],
  ['fail-user-audit-trailing-slash', 'eng', 'GET', '/v1/audit/events/', [403, 404]],
  ['fail-user-audit-double-slash', 'eng', 'GET', '/v1//audit/events', [403, 404]],
  ['fail-user-audit-dot-segment', 'eng', 'GET', '/v1/./audit/events', [403, 404]],
  ['fail-user-audit-percent-encoded', 'eng', 'GET', '/v1/%61udit/events', [403, 404]],
  ['fail-user-audit-encoded-slash', 'eng', 'GET', '/v1/audit%2Fevents', [403, 404]],
  ['fail-user-audit-upper-case', 'eng', 'GET', '/V1/AUDIT/EVENTS', [403, 404]],
  ['fail-user-policy-reload-trailing-slash', 'eng', 'POST', '/v1/admin/policy/reload/', [403, 404]],
  ['fail-user-policy-reload-encoded', 'eng', 'POST', '/v1/admin%2Fpolicy%2Freload', [403, 404]],
  ['fail-user-policy-reload-upper-case', 'eng', 'POST', '/v1/ADMIN/policy/reload', [403, 404]],
  ['fail-user-certificate-log-trailing-slash', 'eng', 'GET', '/v1/certificates/', [403, 404]],
  ['fail-anonymous-requests-put', 'anonymous', 'PUT', '/v1/requests/01J0000000000000000000000A', [401]],
  ['fail-anonymous-requests-unknown-action', 'anonymous', 'POST', '/v1/requests/01J0000000000000000000000A/grant', [401]],
  ['fail-anonymous-certificates', 'anonymous', 'POST', '/v1/certificates', [401]],
  ['fail-anonymous-roles', 'anonymous', 'GET', '/v1/roles', [401]],
  ['fail-user-requests-unknown-action', 'eng', 'POST', '/v1/requests/01J0000000000000000000000A/grant', [404]],
  ['fail-user-requests-delete', 'eng', 'DELETE', '/v1/requests/01J0000000000000000000000A', [404]],
  ['fail-user-requests-patch', 'eng', 'PATCH', '/v1/requests/01J0000000000000000000000A', [404]],
  ['fail-user-get-approve', 'eng', 'GET', '/v1/requests/01J0000000000000000000000A/approve', [404]],
];

for (const backend of BACKENDS) {
  describe(`API authorization (${backend.name})`, () => {
    let t: TestDb;
    let clock: TestClock;
    let id: Awaited<ReturnType<typeof identity>>;
    const tokens: Partial<Record<string, string>> = {};
    let as: Record<string, Awaited<ReturnType<typeof id.as>>>;
    const people: Record<string, Awaited<ReturnType<typeof id.addUser>>> = {};

    before(async () => {
      t = await backend.open();
      clock = new TestClock();
      id = await identity(t.db, clock, { lockoutThreshold: 100, tokenTtl: 30 * 86400 }, { policy: WORKFLOW_POLICY });
      const groups: Record<string, string[]> = { eng: ['engineering'], other: ['engineering'], lead: ['engineering', 'sre-leads'], auditor: ['auditors'], admin: ['admins'], oncall: ['engineering', 'oncall'] };
      as = {};
      for (const [name, g] of Object.entries(groups)) {
        const u = (people[name] = await id.addUser(name, g));
        tokens[name] = await id.tokenFor(u);
        as[name] = await id.as(u);
      }
    });
    after(() => t.cleanup());

    const call = (who: Who, method: string, path: string, body?: unknown) =>
      id.app.request(path, {
        method,
        headers: {
          ...(who === 'anonymous' ? {} : { Authorization: `Bearer ${tokens[who]}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });

    for (const [name, who, method, path, statuses] of ROUTES) {
      test(`${name}: ${who} ${method} ${path} → ${statuses.join(' or ')}`, async () => {
        const res = await call(who, method, path, method === 'POST' || method === 'PUT' ? {} : undefined);
        assert.ok(statuses.includes(res.status), `answered ${res.status}: ${await res.text()}`);
        if (res.status >= 400 && method !== 'HEAD') assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
      });
    }

    test('fail-self-approval-second-session: a requester who is an approver cannot approve their own request from another session', async () => {
      const r = (await as['lead']!('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'rotate the TLS keys' })).body;
      assert.equal(r.status, 'pending');
      // A second login of the same user (a new TOTP step, a new token): another session, the same person.
      const again = await id.as(people['lead']!);
      const self = await again('POST', `/v1/requests/${r.id}/approve`, {});
      assert.equal(self.status, 403);
      assert.match(self.body.detail, /your own request/);
      assert.equal((await as['lead']!('GET', `/v1/requests/${r.id}`)).body.status, 'pending');
    });

    test("fail-act-on-others: cancel, relinquish, extend, acknowledge or certify someone else's request or grant is a 404, and changes nothing", async () => {
      const pending = (await as['eng']!('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'look at the slow queries' })).body;
      const grant = (await as['oncall']!('POST', '/v1/requests', { role: 'web-prod', duration: '1h', reason: 'restart the stuck workers' })).body;
      assert.equal(grant.status, 'approved');
      for (const [path, body] of [
        [`/v1/requests/${pending.id}/cancel`, {}],
        [`/v1/requests/${grant.id}/relinquish`, {}],
        [`/v1/requests/${grant.id}/extend`, { duration: '30m', reason: 'I would like more of it' }],
        [`/v1/requests/${grant.id}/acknowledge`, {}],
        ['/v1/certificates', { public_key: laptop.publicLine, request_id: grant.id }],
      ] as const) {
        const res = await as['other']!('POST', path, body);
        assert.equal(res.status, 404, `${path}: ${JSON.stringify(res.body)}`);
      }
      assert.equal((await as['eng']!('GET', `/v1/requests/${pending.id}`)).body.status, 'pending');
      const after = (await as['oncall']!('GET', `/v1/requests/${grant.id}`)).body;
      assert.deepEqual([after.grant.live, after.grant.ends_at], [true, grant.grant.ends_at]);
    });

    test('fail-body-names-more: fields naming another requester, a status, principals or a longer window are not obeyed', async () => {
      const filed = await as['eng']!('POST', '/v1/requests', {
        role: 'web-prod', duration: '1h', reason: 'check the nginx config',
        requester: 'admin', status: 'approved', approved: true, type: 'grant', approvals: [{ approver: 'lead' }], required_approvals: 0,
      });
      assert.equal(filed.status, 201);
      assert.deepEqual([filed.body.requester, filed.body.status], ['eng', 'pending']);
      const grant = (await as['oncall']!('POST', '/v1/requests', { role: 'web-prod', duration: '30m', reason: 'restart the stuck workers' })).body;
      const cert = await as['oncall']!('POST', '/v1/certificates', {
        public_key: laptop.publicLine, request_id: grant.id,
        principals: ['root', '*'], valid_before: '2099-01-01T00:00:00Z', extensions: ['permit-agent-forwarding'], key_id: 'admin', username: 'admin',
      });
      assert.equal(cert.status, 201, JSON.stringify(cert.body));
      assert.deepEqual(cert.body.principals, ['deploy']);
      assert.equal(cert.body.valid_before, grant.grant.ends_at.replace('.000Z', 'Z'));
      assert.match(cert.body.key_id, /^oncall@jit-ssh req=/);
      const parsed = parseCertificate(Buffer.from(cert.body.certificate.split(' ')[1], 'base64'));
      assert.deepEqual([...parsed.extensions.keys()], ['permit-port-forwarding', 'permit-pty']);
    });

    test('fail-unknown-role: a role the policy does not define is filed denied, never granted', async () => {
      const res = await as['eng']!('POST', '/v1/requests', { role: 'root', duration: '1h', reason: 'I need root everywhere' });
      assert.equal(res.status, 201);
      assert.equal(res.body.status, 'denied');
      assert.equal(res.body.grant, null);
    });
  });
}
