// The container's health check: GET /readyz (the service and its database) on
// the port the service listens on, over https when JIT_SSH_TLS_CERT is set.
// Exit 0 when ready, 1 otherwise, within 2.5 s.
//
// It connects to 127.0.0.1, which the certificate does not name, so the
// certificate is not verified here: nothing secret is sent, and only the
// status code is read.

import http from 'node:http';
import https from 'node:https';

const tls = Boolean(process.env.JIT_SSH_TLS_CERT);
const port = Number(process.env.PORT || 8080);
const req = (tls ? https : http).get({ host: '127.0.0.1', port, path: '/readyz', timeout: 2500, ...(tls ? { rejectUnauthorized: false } : {}) }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (e) => {
  console.error(`healthcheck: ${e.message}`);
  process.exit(1);
});
