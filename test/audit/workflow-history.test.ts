// What auditors read about the workflow (requests, approvals, grants and
// revocations) is as tamper-evident as the logs: the service's own role cannot
// rewrite it, every version of each row is on the hash chain, and `audit
// verify` names a row that disagrees with its chained history or with the
// chained audit events, even after a rewrite by the database owner.

import { PASSWORD_TOTP } from '../../src/core/auth-method.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql, type Kysely, type Transaction } from 'kysely';
import { checkpoint, sealStream, STREAMS } from '../../src/audit/chain.js';
import { exportChain, verifyChainExport } from '../../src/audit/offline.js';
import { parsePolicy } from '../../src/core/policy.js';
import { openDatabase, type DbHandle } from '../../src/db/index.js';
import type { Database } from '../../src/db/schema.js';
import { createAuditService } from '../../src/services/audit.js';
import type { Principal } from '../../src/services/auth.js';
import { createIssuer } from '../../src/services/issuance.js';
import { createRequestService, type RequestView } from '../../src/services/requests.js';
import { createRevocationService } from '../../src/services/revocation.js';
import { BACKENDS, type TestDb } from '../helpers/db.js';
import { TestClock } from '../helpers/clock.js';
import { caSigner, tempDir, userKey } from '../helpers/keys.js';
import { WORKFLOW_POLICY } from '../helpers/policies.js';
import { asServiceRole } from '../helpers/tamper.js';

const policy = parsePolicy(WORKFLOW_POLICY);
const signer = caSigner('ed25519');
const laptop = userKey(tempDir(), 'ed25519', undefined, 'laptop');
const PEOPLE: Record<string, string[]> = { eng: ['engineering'], oncall: ['engineering', 'oncall'], lead: ['sre-leads'], carol: [], sre: ['sre'] };

const who = (name: string): Principal => ({ username: name, groups: PEOPLE[name]!, isAdmin: false, isAuditor: false, expiresAt: new Date(Date.now() + 86_400_000), auth: PASSWORD_TOTP });
const as = (name: string) => ({ principal: who(name), clientAddress: '192.0.2.7' });

type Ids = Record<'auto' | 'pending' | 'denied' | 'cancelled' | 'expired' | 'extension' | 'glass' | 'late' | 'lateGrant', string> & { serial: string };

/** Every kind of change the real workflow makes to requests, approvals, grants and revocations, made through it. */
async function workflow(db: Kysely<Database>, clock: TestClock): Promise<Ids> {
  const svc = createRequestService({ db, policy: () => policy, now: clock.now });
  const file = async (name: string, body: Record<string, unknown>) => (await svc.create(as(name), body, false)) as RequestView;
  const auto = await file('oncall', { role: 'web-prod', duration: '1h', reason: 'deploy the checkout hotfix', ticket: 'OPS-1' });
  assert.equal(auto.status, 'approved');
  const pending = await file('eng', { role: 'web-prod', duration: '3h', reason: 'migrate the session store' });
  assert.equal((await svc.approve(as('carol'), pending.id, 'go ahead')).status, 'approved');
  const denied = await file('eng', { role: 'web-prod', duration: '2h', reason: 'look at the logs' });
  assert.equal((await svc.deny(as('lead'), denied.id, 'use the log pipeline')).status, 'denied');
  const cancelled = await file('eng', { role: 'web-prod', duration: '2h', reason: 'wrong role' });
  assert.equal((await svc.cancel(as('eng'), cancelled.id)).status, 'cancelled');
  const expired = await file('eng', { role: 'web-prod', duration: '2h', reason: 'nobody answers' });
  const extension = (await svc.extend(as('oncall'), auto.id, { duration: '30m', reason: 'the hotfix needs longer' })) as RequestView;
  assert.equal(extension.status, 'approved');
  const glass = await file('sre', { role: 'web-prod', duration: '30m', reason: 'site down, pager fired', break_glass: true });
  assert.equal(glass.status, 'approved');
  assert.equal((await svc.acknowledge(as('lead'), glass.id, 'justified: outage INC-7')).grant!.review!.status, 'acknowledged');
  const issued = await createIssuer({ db, signer, now: clock.now }).issue({ username: 'oncall', requestId: auto.id, role: 'web-prod', publicKey: laptop.publicLine, principals: ['deploy'], validAfter: clock.now(), validBefore: new Date(clock.ms + 3_600_000), extensions: ['permit-pty'], criticalOptions: {}, clientAddress: null });
  await createRevocationService({ db, signer, caKeys: new Map([[signer.fingerprint, signer.publicKeyBlob]]), now: clock.now }).revoke({ serial: issued.serial }, 'laptop stolen', 'os:test');
  await svc.relinquish(as('oncall'), auto.id);
  // An extension filed a second before its grant ends is judged and applied at one instant, under the grant's lock.
  const lateGrant = await file('oncall', { role: 'web-prod', duration: '10m', reason: 'a short fix' });
  const end = Date.parse(lateGrant.grant!.ends_at);
  const times = [new Date(end - 1000), new Date(end + 1000)];
  const racing = createRequestService({ db, policy: () => policy, now: () => (times.length > 1 ? times.shift()! : times[0]!) });
  const late = (await racing.extend(as('oncall'), lateGrant.id, { duration: '10m', reason: 'a little longer' })) as RequestView;
  assert.equal(late.status, 'approved');
  assert.equal(Date.parse(late.grant!.ends_at), end + 600_000);
  clock.advance(3601);
  assert.equal(await svc.expireDue(), 1);
  return { auto: auto.id, pending: pending.id, denied: denied.id, cancelled: cancelled.id, expired: expired.id, extension: extension.id, glass: glass.id, late: late.id, lateGrant: lateGrant.id, serial: issued.serial };
}

async function addPeople(db: Kysely<Database>): Promise<void> {
  await db.insertInto('users').values(Object.entries(PEOPLE).map(([name, groups]) => ({ name, groups, password_hash: 'x', totp_secret: 'x' }))).execute();
}

/** What an auditor reads of the workflow, as one comparable value. */
async function snapshot(db: Kysely<Database>): Promise<string> {
  const rows = await Promise.all(['requests', 'approvals', 'grants', 'revocations'].map((t) => sql<{ j: unknown }>`select jsonb_agg(to_jsonb(x) order by to_jsonb(x)::text) as j from ${sql.table(t)} x`.execute(db)));
  return JSON.stringify(rows.map((r) => r.rows[0]!.j));
}

/** Runs `fn` in a transaction that is rolled back, so each tampering case starts from the same history. */
async function rolledBack(db: Kysely<Database>, fn: (trx: Transaction<Database>) => Promise<void>): Promise<void> {
  const undo = new Error('rolled back');
  await db.transaction().execute(async (trx) => {
    await fn(trx);
    throw undo;
  }).catch((e) => {
    if (e !== undo) throw e;
  });
}

for (const backend of BACKENDS) {
  describe(`workflow history (${backend.name})`, () => {
    let t: TestDb;
    let service: DbHandle | null = null;
    let db: Kysely<Database>;
    let ids: Ids;

    before(async () => {
      t = await backend.open();
      await addPeople(t.db);
      // On PostgreSQL the workflow runs as the service's least-privilege role, as in production.
      service = backend.name === 'postgres' ? await openDatabase({ databaseUrl: asServiceRole(t.url!), dataDir: null, poolSize: 2 }) : null;
      db = service?.db ?? t.db;
      if (service) assert.equal((await sql<{ u: string }>`select current_user as u`.execute(db)).rows[0]!.u, 'jit_ssh_service');
      ids = await workflow(db, new TestClock());
    });
    after(async () => {
      await service?.close();
      await t.cleanup();
    });

    test('ok: the whole workflow runs under the triggers (as the service role on PostgreSQL), and verify finds its tables match their chained history', async () => {
      const v = await createAuditService({ db: t.db }).verify();
      assert.ok(v.workflow, 'verify reports on the workflow tables');
      assert.equal(v.workflow.problem, null);
      assert.equal(v.workflow.ok, true);
      assert.deepEqual(v.workflow.rows, { requests: 9, approvals: 2, grants: 4, revocations: 1 });
      assert.equal(v.ok, true);
      const { rows } = await sql<{ tbl: string; n: string }>`select tbl, count(*)::text as n from row_versions group by tbl order by tbl`.execute(t.db);
      assert.deepEqual(Object.fromEntries(rows.map((r) => [r.tbl, r.n])), { approvals: '2', grants: '8', requests: '13' });
      // The versions are chained and signed like the logs, and travel in the export.
      for (const s of STREAMS) while ((await sealStream(t.db, s, new Date())) > 0);
      for (const s of STREAMS) await checkpoint(t.db, s, signer, new Date());
      const sealed = await createAuditService({ db: t.db, trustedKeys: [signer.publicKeyBlob] }).verify();
      assert.equal(sealed.ok, true, JSON.stringify(sealed));
      assert.deepEqual(sealed.streams.map((x) => [x.stream, x.sealed, x.unsealed, x.checkpoints]), [['certificates', 1, 0, 1], ['audit_events', 17, 0, 1], ['row_versions', 23, 0, 1]]);
      let text = '';
      for await (const chunk of exportChain(t.db, new Date())) text += chunk;
      const offline = await verifyChainExport((async function* () { yield* text.trimEnd().split('\n'); })(), [signer.publicKeyBlob]);
      assert.equal(offline.ok, true, offline.problem ?? '');
      assert.deepEqual(offline.streams.find((x) => x.stream === 'row_versions'), { stream: 'row_versions', records: 23, checkpoints: 1, signed_through: '23' });
    });

    test('fail: the service cannot rewrite what auditors read: a request once filed, a closed request, an approval, a grant beyond the moves the workflow makes', async () => {
      const before = await snapshot(t.db);
      const attempts: Array<[string, ReturnType<typeof sql>, RegExp]> = [
        ['reason', sql`update requests set reason = 'routine maintenance' where id = ${ids.pending}`, /reason cannot change/],
        ['ticket', sql`update requests set ticket = null where id = ${ids.auto}`, /ticket cannot change/],
        ['role', sql`update requests set role = 'db-prod' where id = ${ids.auto}`, /role cannot change/],
        ['duration', sql`update requests set duration_seconds = 60 where id = ${ids.pending}`, /duration_seconds cannot change/],
        ['requester', sql`update requests set requester = 'carol' where id = ${ids.pending}`, /requester cannot change/],
        ['break_glass', sql`update requests set break_glass = false where id = ${ids.glass}`, /break_glass cannot change/],
        ['decision', sql`update requests set decision_rule = 'manual', decision_reason = 'approved by hand' where id = ${ids.auto}`, /decision_reason, decision_rule cannot change/],
        ['created_at', sql`update requests set created_at = created_at - interval '1 day' where id = ${ids.denied}`, /created_at cannot change/],
        ['an outcome', sql`update requests set status = 'denied', close_reason = 'never happened' where id = ${ids.auto}`, /is already approved/],
        ['a close reason', sql`update requests set close_reason = 'nothing to see' where id = ${ids.denied}`, /is already denied/],
        ['reopening', sql`update requests set status = 'pending', closed_at = null, closed_by = null, close_reason = null where id = ${ids.cancelled}`, /is already cancelled/],
        ['deleting a request', sql`delete from requests where id = ${ids.cancelled}`, /permission denied|never deleted/],
        ['an approval comment', sql`update approvals set comment = 'lgtm' where request_id = ${ids.pending}`, /permission denied|append-only/],
        ['an approval', sql`delete from approvals where request_id = ${ids.pending}`, /permission denied|append-only/],
        ['a shorter grant', sql`update grants set ends_at = ends_at - interval '10 minutes' where id = ${ids.pending}`, /never earlier/],
        ['extending a relinquished grant', sql`update grants set ends_at = ends_at + interval '1 hour' where id = ${ids.auto}`, /has ended: it cannot be extended/],
        ['un-ending a grant', sql`update grants set ended_at = null, ended_by = null, end_reason = null where id = ${ids.auto}`, /ends once/],
        ['rewriting why a grant ended', sql`update grants set end_reason = 'expired normally' where id = ${ids.auto}`, /ends once/],
        ['a grant start', sql`update grants set starts_at = starts_at - interval '1 hour' where id = ${ids.pending}`, /starts_at cannot change/],
        ['a grant holder', sql`update grants set username = 'carol' where id = ${ids.pending}`, /username cannot change/],
        ['un-relinquishing', sql`update grants set relinquished_at = null where id = ${ids.auto}`, /relinquished once/],
        ['a second review', sql`update grants set review_comment = 'fine' where id = ${ids.glass}`, /reviewed once/],
        ['deleting a grant', sql`delete from grants where id = ${ids.glass}`, /permission denied|never deleted/],
        ['truncating', sql`truncate approvals, grants, requests cascade`, /permission denied|append-only|never deleted/],
      ];
      for (const [what, statement, refusal] of attempts) {
        await assert.rejects(statement.execute(db), refusal, what);
      }
      assert.equal(await snapshot(t.db), before, 'nothing changed');
      if (service) {
        // Nor can it lend the recording trigger's rights to a table of its own to forge versions.
        await db.connection().execute(async (c) => {
          await sql`create temp table requests (id text)`.execute(c);
          await assert.rejects(sql`create trigger forge after insert on pg_temp.requests for each row execute function jit_ssh_row_version('id')`.execute(c), /permission denied/);
          await assert.rejects(sql`insert into row_versions (tbl, row_key, op, xact, data) values ('requests', 'x', 'insert', 1, '{}')`.execute(c), /permission denied/);
          await sql`drop table pg_temp.requests`.execute(c);
        });
      }
    });

    const cases: Array<[string, (ids: Ids) => Array<ReturnType<typeof sql>>, RegExp]> = [
      ['a request\'s reason rewritten', (i) => [sql`update requests set reason = 'routine maintenance' where id = ${i.pending}`], /^requests (\w+): reason differs from its last chained version \(row_versions \d+\)$/],
      ['a ticket rewritten along with a forged newer version', (i) => [
        sql`update requests set ticket = 'OPS-999' where id = ${i.auto}`,
        sql`insert into row_versions (tbl, row_key, op, xact, data) select 'requests', id, 'update', txid_current(), jit_ssh_row_image(r) from requests r where id = ${i.auto}`,
      ], /^requests (\w+): ticket changed after it was filed \(row_versions \d+\)$/],
      ['an approval\'s comment rewritten', (i) => [sql`update approvals set comment = 'lgtm' where request_id = ${i.pending}`], /^approvals (\w+)\/carol: comment differs from its last chained version/],
      ['an approval removed', (i) => [sql`delete from approvals where request_id = ${i.pending}`], /^approvals (\w+)\/carol was removed \(its last chained version is row_versions \d+\)$/],
      ['a grant made longer, history and all', (i) => [
        sql`update grants set ends_at = ends_at + interval '8 hours' where id = ${i.pending}`,
        sql`insert into row_versions (tbl, row_key, op, xact, data) select 'grants', id, 'update', txid_current(), jit_ssh_row_image(g) from grants g where id = ${i.pending}`,
      ], /^grants (\w+): ends at \S+, but its request and approved extensions end it at \S+$/],
      ['why a grant ended rewritten', (i) => [sql`update grants set end_reason = 'expired normally' where id = ${i.auto}`], /^grants (\w+): end_reason differs from its last chained version/],
      ['why a grant ended rewritten, history and all', (i) => [
        sql`update grants set end_reason = 'expired normally' where id = ${i.auto}`,
        sql`insert into row_versions (tbl, row_key, op, xact, data) select 'grants', id, 'update', txid_current(), jit_ssh_row_image(g) from grants g where id = ${i.auto}`,
      ], /^grants (\w+): its end changed \(row_versions \d+\)$/],
      ['a review comment rewritten', (i) => [sql`update grants set review_comment = 'not needed' where id = ${i.glass}`], /^grants (\w+): review_comment differs from its last chained version/],
      ['a request removed', (i) => [sql`delete from requests where id = ${i.cancelled}`], /^requests (\w+) was removed/],
      ['a request made up', () => [
        sql`insert into requests (id, requester, role, duration_seconds, reason, ticket, break_glass, status, decision_outcome, decision_rule, decision_reason, policy_digest, required_approvals, created_at, expires_at, closed_at, closed_by, close_reason)
          values ('01JFAKEFAKEFAKEFAKEFAKEFAK', 'eng', 'web-prod', 3600, 'made up', null, false, 'denied', 'denied', 'none', 'x', 'x', 1, now(), now(), now(), 'policy', 'x')`,
      ], /^requests (01JFAKEFAKEFAKEFAKEFAKEFAK) has no chained history/],
      ['a request made up with a forged history', () => [
        sql`insert into requests (id, requester, role, duration_seconds, reason, ticket, break_glass, status, decision_outcome, decision_rule, decision_reason, policy_digest, required_approvals, created_at, expires_at, closed_at, closed_by, close_reason)
          values ('01JFAKEFAKEFAKEFAKEFAKEFAK', 'eng', 'web-prod', 3600, 'made up', null, false, 'denied', 'denied', 'none', 'x', 'x', 1, now(), now(), now(), 'policy', 'x')`,
        sql`insert into row_versions (tbl, row_key, op, xact, data) select 'requests', id, 'insert', txid_current(), jit_ssh_row_image(r) from requests r where id = '01JFAKEFAKEFAKEFAKEFAKEFAK'`,
      ], /^requests (01JFAKEFAKEFAKEFAKEFAKEFAK) has no request\.create or request\.extend event$/],
      ['an approved request turned denied, passed off as part of its filing transaction', (i) => [
        sql`update requests set status = 'denied', close_reason = 'never granted' where id = ${i.glass}`,
        sql`insert into row_versions (tbl, row_key, op, xact, data) select 'requests', id, 'update', (select min(xact) from row_versions where tbl = 'requests' and row_key = ${i.glass}), jit_ssh_row_image(r) from requests r where id = ${i.glass}`,
      ], /^requests (\w+) is denied, but its events say approved$/],
      ['a filing event that disagrees with its request', (i) => [
        sql`update requests set role = 'db-prod' where id = ${i.denied}`,
        sql`insert into row_versions (tbl, row_key, op, xact, data) select 'requests', id, 'baseline', txid_current(), jit_ssh_row_image(r) from requests r where id = ${i.denied}`,
        sql`delete from row_versions where tbl = 'requests' and row_key = ${i.denied} and op <> 'baseline'`,
      ], /^requests (\w+): role does not match its request\.create event \d+$/],
      ['an approval made up', (i) => [
        sql`insert into approvals (request_id, approver, decision, comment, at) values (${i.glass}, 'carol', 'approve', 'sure', now())`,
        sql`insert into row_versions (tbl, row_key, op, xact, data) select 'approvals', request_id || '/' || approver, 'insert', txid_current(), jit_ssh_row_image(a) from approvals a where request_id = ${i.glass}`,
      ], /^approvals (\w+)\/carol has no request\.approve event$/],
      ['a revocation removed', (i) => [sql`delete from revocations where serial = ${i.serial}`], /^certificate\.revoke event \d+ lists serial (\d+), which has no revocation$/],
      ['a revocation\'s reason rewritten', (i) => [sql`update revocations set reason = 'routine' where serial = ${i.serial}`], /^revocations (\d+): reason does not match its certificate\.revoke event \d+$/],
    ];
    for (const [name, statements, problem] of cases) {
      test(`fail: a rewrite by the database owner is named by verify: ${name}`, async () => {
        await rolledBack(t.db, async (trx) => {
          await sql`set local session_replication_role = replica`.execute(trx);
          for (const s of statements(ids)) await s.execute(trx);
          await sql`set local session_replication_role = origin`.execute(trx);
          const v = await createAuditService({ db: trx }).verify();
          assert.equal(v.ok, false, name);
          assert.equal(v.workflow?.ok, false, name);
          assert.match(v.workflow!.problem ?? '', problem);
          const named = problem.exec(v.workflow!.problem!)?.[1];
          if (named && !named.startsWith('01JFAKE')) assert.ok(Object.values(ids).includes(named), `${named} is one of the rows changed`);
        });
      });
    }
  });
}
