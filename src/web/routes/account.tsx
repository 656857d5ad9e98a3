// The account page: the passkeys and security keys of the person logged in,
// registering another (the options, with their challenge bound to this
// session, are in the page; the script asks the authenticator), and removing
// one. Once a person has a passkey, every web sign-in of theirs ends with it.

import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DomainError } from '../../core/errors.js';
import { STATUS_OF } from '../../core/error-status.js';
import type { WebauthnService } from '../../services/webauthn.js';
import { mfaRules, siteOf, type WebContext, type WebDeps, type WebEnv } from '../context.js';
import { WebError } from '../errors.js';
import { Alert, Csrf, DataTable, Field, PostButton, Time } from '../views/components.js';
import { page } from '../views/layout.js';

export function accountRoutes(deps: WebDeps & { webauthn: WebauthnService }) {
  const app = new Hono<WebEnv>();
  const wa = deps.webauthn;

  const show = async (c: WebContext, status: ContentfulStatusCode, state: { error?: string; name?: string; notice?: string } = {}) => {
    const v = c.get('viewer');
    const me = v.who.username;
    const keys = await wa.passkeys(me);
    const options = await wa.registrationOptions({ username: me, binding: c.get('sessionToken'), site: siteOf(c, deps) });
    const mfa = mfaRules(deps);
    return page(c, status, { title: 'Passkeys', viewer: v, current: 'account', passkey: true }, (
      <>
        <h1>Passkeys and security keys</h1>
        <p>
          You signed in with: <code>{v.who.auth.method}</code>
          {v.who.auth.webauthn ? ' and a passkey' : ''}.
        </p>
        {state.notice && (
          <p class="notice" role="status">
            {state.notice}
          </p>
        )}
        <p>
          {keys.length > 0
            ? 'Each web sign-in of yours ends with one of these.'
            : mfa.login === 'webauthn'
              ? 'This server’s policy asks for a passkey at every web sign-in: register one now, or your next sign-in is refused.'
              : 'Register a passkey and each web sign-in of yours will end with it (a code alone can be phished; a passkey answers only this site).'}
          {mfa.approval === 'webauthn' ? ' Approving requests needs a passkey here.' : ''}
        </p>
        <DataTable
          caption="Your passkeys"
          columns={['Name', 'Registered', 'Last used', { label: 'Credential id', class: 'mono' }, '']}
          rows={keys.map((k) => [k.name, <Time iso={k.created_at} />, <Time iso={k.last_used_at} />, k.id, <PostButton action={`/ui/account/passkeys/${encodeURIComponent(k.id)}/remove`} csrf={v.csrf} label={`Remove ${k.name}`} />])}
          empty="You have no passkeys yet."
        />
        <h2>Add a passkey</h2>
        <Alert message={state.error} id="register-error" />
        <form method="post" action="/ui/account/passkeys" class="stack" data-webauthn="register" data-options={JSON.stringify(options)}>
          <Csrf token={v.csrf} />
          <input type="hidden" name="webauthn" value="" />
          <Field id="passkey-name" name="name" label="Name (to tell your passkeys apart)" value={state.name ?? ''} maxlength={64} placeholder="e.g. work laptop" invalid={!!state.error} errorId="register-error" />
          <p class="status" data-webauthn-status role="status" aria-live="polite"></p>
          <button type="submit" class="primary">
            Register a passkey
          </button>
        </form>
      </>
    ));
  };

  app.get('/ui/account', (c) => show(c, 200));

  app.post('/ui/account/passkeys', async (c) => {
    const v = c.get('viewer');
    const f = c.get('form');
    try {
      const k = await wa.register({ username: v.who.username, binding: c.get('sessionToken'), site: siteOf(c, deps), response: f['webauthn'] ?? '', name: f['name'] ?? '', clientAddress: deps.clientAddress(c) });
      return show(c, 200, { notice: `Registered ${k.name}.` });
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      return show(c, STATUS_OF[e.code], { error: e.message, name: f['name'] });
    }
  });

  app.post('/ui/account/passkeys/:id/remove', async (c) => {
    const v = c.get('viewer');
    const id = c.req.param('id');
    if (!/^[A-Za-z0-9_-]{1,1400}$/.test(id)) throw new WebError(404, 'There is no such passkey.');
    try {
      await wa.remove({ username: v.who.username, id, clientAddress: deps.clientAddress(c) });
    } catch (e) {
      if (e instanceof DomainError && e.code === 'not_found') throw new WebError(404, 'There is no such passkey of yours.');
      throw e;
    }
    return c.redirect('/ui/account', 303);
  });

  return app;
}
