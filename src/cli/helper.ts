// `jit-ssh`: the engineer's login helper.

import { parseArgs } from 'node:util';
import { loadClientConfig } from '../config.js';
import { relinquish } from './client/relinquish.js';
import { cert, decideRequest, login, logout, request, requests, roles, ssh, sshConfig, status, type Flags } from './client/commands.js';
import { Home } from './client/home.js';
import { runCli, UsageError } from './run.js';

const HELP = `jit-ssh — just-in-time SSH access from the terminal

Usage:
  jit-ssh login [--server URL] [--user NAME] [--password-stdin] [--totp CODE]
  jit-ssh login --sso [--issuer ID] [--device | --loopback] [--no-browser]
                                                sign in with your identity provider in the browser:
                                                a redirect to 127.0.0.1 on a desktop, else a device
                                                code to approve in any browser; where the server
                                                asks for a passkey, a page of the server's then
                                                confirms it (the device flow prints its URL)
  jit-ssh roles [--json]                        roles you may request
  jit-ssh request ROLE --for DURATION --reason TEXT [--ticket ID] [--break-glass] [--wait] [--dry-run] [--json]
  jit-ssh requests [--pending] [--json]         your requests, and those you may decide
  jit-ssh approve ID [--comment TEXT] [--totp CODE] [--yes]
                                                shows the request, asks, approves; asks for a fresh
                                                code from your authenticator when policy wants one
  jit-ssh deny ID [--comment TEXT] [--totp CODE] [--yes]
  jit-ssh relinquish ID [--json]                end your grant now; its certificates are revoked
  jit-ssh cert [REQUEST_ID] [--sk] [--no-agent] [--json]
                                                new key pair + certificate for a live grant, under
                                                $JIT_SSH_HOME/keys/ROLE, added to ssh-agent until it expires;
                                                --sk: the key is made on your FIDO security key
                                                (ssh-keygen -t ed25519-sk -O verify-required: touch it,
                                                give its PIN), as roles with require_key: fido want,
                                                and kept out of ssh-agent
  jit-ssh ssh [ROLE] [--sk] [--for DURATION --reason TEXT] -- [ssh arguments]
                                                ssh with a live certificate for ROLE, requesting
                                                (and waiting for) one when there is none; --sk as for cert
  jit-ssh status [--json]                       session, live grants, certificates, time left
  jit-ssh config                                a ~/.ssh/config snippet for plain \`ssh\`
  jit-ssh logout                                ends the session on the server too

Durations: 90s, 15m, 2h, 1h30m.

Examples:
  jit-ssh login --server https://ca.example.com
  jit-ssh login --sso --device                  (on a server or over ssh: approve the code elsewhere)
  jit-ssh request web-prod --for 2h --reason "deploy hotfix" --ticket OPS-123 --wait
  jit-ssh ssh web-prod --for 30m --reason "restart workers" -- web1.prod.example.com
  jit-ssh ssh web-prod -- web1.prod.example.com uptime
  jit-ssh cert --sk                             (a role with require_key: fido: touch the security key)
  jit-ssh requests --pending && jit-ssh approve 01JD3M... --comment "ok"

Settings:
  JIT_SSH_SERVER        the jit-ssh-ca server (default: the one you logged in to, else http://127.0.0.1:8080)
  JIT_SSH_HOME          session and keys (default ~/.jit-ssh; files 0600, directory 0700)
  BROWSER               the command that opens sign-in pages (default: open / xdg-open on a desktop)

Exit status: 0 on success; 1 when the server refuses or a request is denied; 2 for a wrong
command line; \`jit-ssh ssh\` exits with ssh's own status.
`;

async function main(argv: string[]): Promise<number> {
  // Everything after `--` belongs to ssh.
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const passThrough = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      server: { type: 'string' },
      user: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      totp: { type: 'string' },
      for: { type: 'string' },
      reason: { type: 'string' },
      ticket: { type: 'string' },
      'break-glass': { type: 'boolean' },
      wait: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      pending: { type: 'boolean' },
      comment: { type: 'string' },
      yes: { type: 'boolean', short: 'y' },
      'no-agent': { type: 'boolean' },
      sk: { type: 'boolean' },
      sso: { type: 'boolean' },
      issuer: { type: 'string' },
      device: { type: 'boolean' },
      loopback: { type: 'boolean' },
      'no-browser': { type: 'boolean' },
    },
  });
  const [command, arg, ...extra] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (!command) throw new UsageError('no command given');
  if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
  if (passThrough.length > 0 && command !== 'ssh') throw new UsageError('only jit-ssh ssh takes arguments after --');
  if (values.sk && command !== 'cert' && command !== 'ssh') throw new UsageError('--sk goes with jit-ssh cert and jit-ssh ssh');
  const config = loadClientConfig(process.env, { server: values.server });
  const ctx = { config, home: new Home(config.home), flags: values as Flags, env: process.env };
  const noArg = (name: string) => {
    if (arg !== undefined) throw new UsageError(`${name} takes no argument (got ${JSON.stringify(arg)})`);
  };
  switch (command) {
    case 'login':
      noArg('login');
      if (!values.sso && (values.issuer !== undefined || values.device || values.loopback || values['no-browser'])) throw new UsageError('--issuer, --device, --loopback and --no-browser go with --sso');
      if (values.device && values.loopback) throw new UsageError('choose one of --device and --loopback');
      return login(ctx);
    case 'logout':
      noArg('logout');
      return logout(ctx);
    case 'roles':
      noArg('roles');
      return roles(ctx);
    case 'request':
      return request(ctx, arg);
    case 'requests':
      noArg('requests');
      return requests(ctx);
    case 'approve':
      return decideRequest(ctx, arg, 'approve');
    case 'deny':
      return decideRequest(ctx, arg, 'deny');
    case 'relinquish':
      return relinquish(ctx, arg);
    case 'cert':
      return cert(ctx, arg);
    case 'ssh':
      return ssh(ctx, arg, passThrough);
    case 'status':
      noArg('status');
      return status(ctx);
    case 'config':
      noArg('config');
      return sshConfig(ctx);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

await runCli('jit-ssh', () => main(process.argv.slice(2)));
