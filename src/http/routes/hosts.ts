// Host trust: the host CA keys clients put in known_hosts (`@cert-authority`),
// and the enrollment and renewal of servers' host certificates. Enrollment is
// authenticated by the one-time token in the body, renewal by the renewal
// credential enrollment gave: no user session is involved.

import { Hono, type Context } from 'hono';
import type { HostService } from '../../services/hosts.js';
import { jsonBody } from '../json.js';
import { HttpProblem } from '../problem.js';
import type { AppEnv } from '../types.js';

export interface HostRoutesDeps {
  /** Absent: this server signs no host certificates (the routes answer 404). */
  hosts?: Pick<HostService, 'caKeysText' | 'enroll' | 'renew'>;
  clientAddress: (c: Context) => string | null;
}

export function hostRoutes(deps: HostRoutesDeps) {
  const hosts = () => {
    if (!deps.hosts) throw new HttpProblem(404, 'Not Found', 'this server has no host CA');
    return deps.hosts;
  };
  return new Hono<AppEnv>()
    .get('/v1/host-ca.pub', (c) => {
      c.header('Cache-Control', 'no-cache');
      return c.text(hosts().caKeysText());
    })
    .post('/v1/hosts/enroll', async (c) => c.json(await hosts().enroll(await jsonBody(c), deps.clientAddress(c)), 201))
    .post('/v1/hosts/renew', async (c) => c.json(await hosts().renew(await jsonBody(c), deps.clientAddress(c))));
}
