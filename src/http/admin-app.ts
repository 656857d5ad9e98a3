// The local administration API, served only on a Unix socket that only the
// CA's OS user can open (mode 0600 in a directory only it can write). Being
// that user, or root, is the proof of authority, as with a root shell on the
// CA host. Who the caller is comes from the kernel (the socket's peer
// credentials, see admin-socket.ts), never from the request: every change is
// logged as `os:NAME` (`uid:N` when the uid has no name). A caller that
// cannot be identified, or that is another user, is refused.

import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { ACTOR_LABEL, osActor, withLabel } from '../core/actor.js';
import type { Logger } from '../log.js';
import type { AuditService } from '../services/audit.js';
import type { RevocationService } from '../services/revocation.js';
import type { UserAdmin } from '../services/users.js';
import type { HostService } from '../services/hosts.js';
import type { AdminBindings } from './admin-socket.js';
import { jsonInput, queryInput } from './input.js';
import { jsonOnly } from './json.js';
import { answerErrors, HttpProblem, problem } from './problem.js';
import type { AppEnv } from './types.js';

/** What the caller calls itself (e.g. the person behind sudo): recorded beside the actor as `actor_label`, never as the actor. */
export const LABEL_HEADER = 'X-Jit-Ssh-Label';

export interface AdminAppDeps {
  users: UserAdmin;
  audit: AuditService;
  revocation: RevocationService;
  logger: Logger;
  /** Host certificates signed and enrollment tokens made for `jit-ssh-ca host ...`. */
  hosts?: Pick<HostService, 'sign' | 'createToken'>;
  /** The uid the server runs as (default: its effective uid); callers must be this user or root. */
  ownUid?: number;
}

export function createAdminApp(deps: AdminAppDeps) {
  const ownUid = deps.ownUid ?? process.geteuid?.() ?? -1;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const list = (v: unknown): string[] => (Array.isArray(v) ? v : []);
  const optStr = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const hostsOf = () => {
    if (!deps.hosts) throw new HttpProblem(404, 'Not Found', 'this server has no host CA');
    return deps.hosts;
  };

  // One chain, so that the app's type is its route table: the admin client (cli/admin-client.ts) is typed from it.
  const app = new Hono<AppEnv>()
    .use(async function adminActor(c, next) {
      const peer = (c.env as AdminBindings | undefined)?.peer;
      const refuse = (detail: string, fields: Record<string, unknown>) => {
        deps.logger.warn('admin request refused', { ...fields, method: c.req.method, path: c.req.path });
        return new HttpProblem(403, 'Forbidden', detail);
      };
      if (!peer || 'error' in peer) {
        const reason = peer?.error ?? 'no peer credentials';
        throw refuse(`the admin socket cannot identify its caller (${reason}); refused`, { reason });
      }
      if (peer.uid !== ownUid && peer.uid !== 0) {
        throw refuse(`the admin socket serves only its own OS user (uid ${ownUid}) and root; uid ${peer.uid}${peer.name ? ` (${peer.name})` : ''} is refused`, { uid: peer.uid, pid: peer.pid });
      }
      const label = c.req.header(LABEL_HEADER);
      if (label !== undefined && !ACTOR_LABEL.test(label)) throw new HttpProblem(400, 'Bad Request', `${LABEL_HEADER} must be 1 to 64 letters, digits or . _ @ + : -`);
      const actor = osActor(peer.uid, peer.name);
      c.set('actor', withLabel(actor, label));
      await next();
      deps.logger.info('admin', { actor, uid: peer.uid, pid: peer.pid, ...(label === undefined ? {} : { label }), method: c.req.method, path: c.req.path, status: c.res.status });
    })
    .use(jsonOnly())

    .get('/admin/users', async (c) => c.json({ users: await deps.users.list() }))
    .post(
      '/admin/users',
      jsonInput((b) => ({ name: str(b['name']), groups: list(b['groups']), password: str(b['password']) })),
      async (c) => c.json(await deps.users.add(c.req.valid('json'), c.get('actor')), 201),
    )
    .post('/admin/users/:name/disable', async (c) => c.json(await deps.users.disable(c.req.param('name'), c.get('actor'))))
    .post('/admin/users/:name/enable', async (c) => {
      await deps.users.enable(c.req.param('name'), c.get('actor'));
      return c.body(null, 204);
    })
    .post('/admin/users/:name/reset-mfa', async (c) => c.json(await deps.users.resetMfa(c.req.param('name'), c.get('actor'))))
    .post(
      '/admin/users/:name/password',
      jsonInput((b) => ({ password: str(b['password']) })),
      async (c) => {
        await deps.users.setPassword(c.req.param('name'), c.req.valid('json').password, c.get('actor'));
        return c.body(null, 204);
      },
    )
    .post(
      '/admin/users/:name/groups',
      jsonInput((b) => ({ groups: list(b['groups']) })),
      async (c) => c.json(await deps.users.setGroups(c.req.param('name'), c.req.valid('json').groups, c.get('actor'))),
    )

    // The auditors' views, for `jit-ssh-ca audit ...` and `revoke` on the CA host.
    .get('/admin/audit/certificates', queryInput(), async (c) => c.json(await deps.audit.certificates(c.req.valid('query'))))
    .get('/admin/audit/events', queryInput(), async (c) => c.json(await deps.audit.events(c.req.valid('query'))))
    .get('/admin/audit/verify', async (c) => c.json(await deps.audit.verify()))
    .get('/admin/audit/chain', (c) => {
      c.header('Content-Type', 'application/x-ndjson');
      return stream(c, async (s) => {
        for await (const chunk of deps.audit.exportChain()) await s.write(chunk);
      });
    })
    .post(
      '/admin/audit/chain-hashes',
      jsonInput((b) => ({ stream: b['stream'] as string, positions: b['positions'] })),
      async (c) => {
        const b = c.req.valid('json');
        return c.json(await deps.audit.chainHashes(b.stream, b.positions));
      },
    )
    .get('/admin/ca/key-usage', async (c) => c.json({ keys: await deps.audit.caKeyUsage() }))
    .get('/admin/audit/report', queryInput(), async (c) => c.json(await deps.audit.report(c.req.valid('query'))))
    .post(
      '/admin/audit/sshd-log',
      jsonInput((b) => ({ text: b['text'] as string, host: b['host'] as string })),
      async (c) => {
        const b = c.req.valid('json');
        return c.json(await deps.audit.ingestSshd(b.text, b.host));
      },
    )
    .post(
      '/admin/revocations',
      jsonInput((b) => ({ serial: optStr(b['serial']), user: optStr(b['user']), request: optStr(b['request']), reason: str(b['reason']) })),
      async (c) => {
        const { reason, ...target } = c.req.valid('json');
        return c.json(await deps.revocation.revoke(target, reason, c.get('actor')));
      },
    )
    .post(
      '/admin/hosts/certificates',
      jsonInput((b) => ({ public_key: str(b['public_key']), names: list(b['names']), ttl: typeof b['ttl'] === 'number' ? b['ttl'] : undefined })),
      async (c) => {
        const b = c.req.valid('json');
        return c.json(await hostsOf().sign({ publicKey: b.public_key, names: b.names, ttl: b.ttl }, c.get('actor')), 201);
      },
    )
    .post(
      '/admin/hosts/tokens',
      jsonInput((b) => ({ names: list(b['names']), ttl: typeof b['ttl'] === 'number' ? b['ttl'] : undefined })),
      async (c) => c.json(await hostsOf().createToken(c.req.valid('json'), c.get('actor')), 201),
    )
    .get('/admin/krl', async (c) => {
      const k = await deps.revocation.krl();
      return c.json({ ...k, krl: k.krl.toString('base64') });
    });

  app.notFound((c) => problem(c, 404, `no admin route for ${c.req.method} ${c.req.path}`));
  app.onError(answerErrors({ logger: deps.logger, failure: 'admin request failed' }));
  return app;
}

/** The admin socket's app: its type is the route table the admin client is typed from. */
export type AdminApp = ReturnType<typeof createAdminApp>;
