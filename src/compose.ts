// The server's app, made from its services: the API with the web pages
// mounted beside it. The only place the HTTP API and the web pages meet; the
// server and the tests compose them here.

import type { Context } from 'hono';
import { createApp, type App, type AppDeps } from './http/app.js';
import type { Logger } from './log.js';
import type { Services } from './services/index.js';
import { webPages } from './web/index.js';

export interface ServerAppOptions extends Pick<AppDeps, 'ready' | 'reloadPolicy' | 'bodyLimit' | 'requestTimeoutMs'> {
  logger: Logger;
  clientAddress: (c: Context) => string | null;
  /** The web pages under /ui (and a landing page at /), with the origin browsers use (null = each request's own); absent = the API only. */
  web?: { publicUrl: string | null; now?: () => Date };
  /** Serve /v1/host-ca.pub and host enrollment (the services were given the host CA keys). */
  hosts?: boolean;
}

/** The API (and the web pages) over `services`. */
export async function createServerApp(services: Services, opts: ServerAppOptions): Promise<App> {
  const auth = await services.auth;
  const { logger, clientAddress, requestTimeoutMs } = opts;
  const { requests, certificates, audit, stepUp } = services;
  return createApp({
    logger,
    bodyLimit: opts.bodyLimit,
    requestTimeoutMs,
    caKeys: () => services.caKeys.document(),
    krl: () => services.revocation.krl(),
    ready: opts.ready,
    reloadPolicy: opts.reloadPolicy,
    auth,
    clientAddress,
    requests,
    certificates,
    audit,
    stepUp,
    oidc: services.oidc,
    mfa: () => services.policy().mfa,
    hosts: opts.hosts ? services.hosts : undefined,
    pages: opts.web && webPages({ logger, auth, stepUp, requests, audit, clientAddress, oidc: services.oidc, webauthn: services.webauthn, mfa: () => services.policy().mfa, ...opts.web }),
  });
}

