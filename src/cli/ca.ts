// `jit-ssh-ca`: the server and its administration.

import { parseArgs } from 'node:util';
import { loadServerConfig, SERVER_SETTINGS } from '../config.js';
import { createLogger, silentLogger } from '../log.js';
import { serveUntilSignalled } from '../server.js';
import { loadCaKeys } from '../services/ca-signer.js';
import { runCli, UsageError } from './run.js';
import { userCommand } from './user-commands.js';
import { policyCheck } from './policy-commands.js';
import { auditCommand } from './audit-commands.js';
import { caCommand } from './ca-key-commands.js';
import { hostCommand } from './host-commands.js';
import { enrollToken, SERVER_SCRIPTS, SERVER_SETUP_DEFAULTS, serverSetupScript, vetServerSetup } from './server-setup.js';
import { readPolicyFile } from '../services/policy-store.js';
import { readFile } from 'node:fs/promises';

const settingFlags = Object.values(SERVER_SETTINGS)
  .filter((s) => s.flag !== null)
  .map((s) => `  --${s.flag!.padEnd(24)} ${s.env}: ${s.help}`)
  .join('\n');

const HELP = `jit-ssh-ca — the jit-ssh certificate authority

Usage:
  jit-ssh-ca serve [settings]        run the HTTP service (what \`npm start\` runs)
  jit-ssh-ca ca pubkey [settings]    print the TrustedUserCAKeys lines for sshd
  jit-ssh-ca ca generate --out FILE  make a new ed25519 CA key (the next key of a rotation)
  jit-ssh-ca ca keys [--json]        each CA key: signing, trusted or retired, its certificates, the live
                                     ones, and when a replaced key can be retired
  jit-ssh-ca user add NAME [--groups a,b] [--password-stdin] [--json]
                                     create a user; prints the TOTP enrollment URI (and a QR code on a terminal)
  jit-ssh-ca user list [--json]
  jit-ssh-ca user disable|enable NAME [--json]
                                     disable ends the user's sessions and live grants and revokes the
                                     grants' certificates; enabling again brings none of them back
  jit-ssh-ca user reset-mfa NAME [--json]     new TOTP secret; the old one, all sessions and all passkeys stop working
  jit-ssh-ca user set-password NAME [--password-stdin]
  jit-ssh-ca user set-groups NAME a,b [--json]
                                     live grants the new groups no longer allow end, their certificates revoked
  jit-ssh-ca policy check FILE       validate a policy file; prints every problem with its path
  jit-ssh-ca host sign HOST_PUBKEY_FILE --name NAME[,NAME...] [--for DURATION] [--json]
                                     sign a host key with the host CA (JIT_SSH_HOST_CA_KEY, never the CA
                                     key): writes KEY-cert.pub beside it, prints the certificate line;
                                     --for defaults to JIT_SSH_HOST_CERT_TTL (30d)
  jit-ssh-ca host token NAME [--names a,b] [--ttl 1h] [--json]
                                     a one-time enrollment token for a server (server-setup --enroll-token):
                                     it enrolls NAME and the --names only, once, within --ttl

  jit-ssh-ca audit list [filters] [--format table|json|csv] [--all] [--limit N] [--cursor C]
                                     issued certificates, newest first; filters: --user --principal --role
                                     --serial --request --approver --break-glass true|false --since --until
                                     --kind user|host (host certificates: principals are host names)
  jit-ssh-ca audit events [--actor A] [--action X] [--target T] [--since] [--until] [--format ...]
  jit-ssh-ca audit verify [--checkpoint FILE] [--json]
                                     check the hash chains, their signed checkpoints, the heads this
                                     instance signed and the workflow tables; exit 1 naming the first bad
                                     or missing record; --checkpoint: the log still holds and extends
                                     every checkpoint witnessed in FILE (JIT_SSH_CHECKPOINT_LOG, or an
                                     older export), naming the first it does not
  jit-ssh-ca audit export [--stream certificates|events] [filters] [--out FILE]
                                     every record of a period as JSON lines (for a SIEM)
  jit-ssh-ca audit export --chain [--out FILE]
                                     the hash chain with its signed checkpoints, to check elsewhere
  jit-ssh-ca audit verify --file FILE [--ca-keys FILE] [--checkpoint FILE]
                                     check such an export offline, against the CA public keys (ca.pub;
                                     lines marked @retired count too), and that it holds every
                                     checkpoint witnessed in the --checkpoint file
  jit-ssh-ca audit ingest-sshd FILE|- [--hostname NAME]
                                     record certificate logins, and certificates sshd refused (OpenSSH 10.1+),
                                     from an sshd log (read twice, counted once);
                                     --hostname names the server for lines without a syslog prefix
  jit-ssh-ca audit report [--since 30d] [--until T] [--format md|json|csv] [--out FILE]
                                     the access review: grants per role and user, who approved, break-glass
                                     and its reviews, longest grants, extensions, grants never used,
                                     standing-access candidates, policy changes, revocations
  jit-ssh-ca revoke SERIAL|--user NAME|--request ID --reason TEXT
                                     revoke live certificates (a stolen laptop); servers refuse them once
                                     they fetch the KRL. --request and --user also end the grants (no new
                                     certificate for them); a SERIAL alone leaves its grant live
  jit-ssh-ca krl [--out FILE] [--sig FILE]
                                     the KRL for sshd's RevokedKeys (written atomically) and its signature
                                     --since/--until take RFC 3339 times or durations back from now (30d, 2h)
  jit-ssh-ca server-setup --url URL [--dir DIR] [--no-session-guard] [--warn 5m] [--krl-interval 30s]
                     [--enroll-token TOKEN | --enroll-token-file FILE|-] [--host-key-dir /etc/ssh]
                                     print a script that sets up a server (run it there as root): the CA
                                     keys, the KRL refresher and its cron line, the session guard (it warns
                                     --warn before a certificate ends, then ends the session; it checks open
                                     sessions against the KRL every --krl-interval), the sshd drop-in;
                                     --sbin-dir, --libexec-dir, --sshd-config-dir, --cron-dir move what it
                                     installs. With an enrollment token (jit-ssh-ca host token NAME) the
                                     refresher also gets certificates for the host keys in --host-key-dir,
                                     renews them, and the drop-in gets their HostCertificate lines
  jit-ssh-ca server-setup --print refresh|session-guard
                                     print one of the two server-side scripts
  jit-ssh-ca --help                  this text

User, audit, revoke and krl commands go through the running server's admin socket (DATA_DIR/admin.sock, only
the CA's OS user can open it) and open the database directly when no server runs. Each
change is recorded in the audit log as done by os:<your OS user> (uid:N when it has no name),
as the kernel names the socket's peer; run through sudo, SUDO_USER is kept beside it as
actor_label. The server refuses any other user but root. The first administrator
of a new installation is made the same way: jit-ssh-ca user add alice --groups admins

Settings (flags override the environment variables named):
${settingFlags}
  JIT_SSH_CA_KEY_PASSPHRASE      passphrase of the CA key (environment only)

Examples:
  jit-ssh-ca serve                                  embedded database and a new CA key in ./data
  DATABASE_URL=postgres://jit@db/jit jit-ssh-ca serve --port 8443
  jit-ssh-ca ca pubkey | sudo tee /etc/ssh/jit-ssh-ca.pub
      then in sshd_config: TrustedUserCAKeys /etc/ssh/jit-ssh-ca.pub
  jit-ssh-ca user add alice --groups engineering,oncall
  printf '%s\n' "$PASSWORD" | jit-ssh-ca user add deploy-bot --password-stdin --json
  jit-ssh-ca audit list --user alice --since 7d --format csv > alice.csv
  journalctl -u ssh --since -1h -o short-iso | jit-ssh-ca audit ingest-sshd - --hostname web-1
  jit-ssh-ca revoke --user alice --reason "laptop stolen" && jit-ssh-ca user disable alice
  jit-ssh-ca server-setup --url https://ca.example.com | ssh root@web-1 sh

The policy in force is re-read on SIGHUP (kill -HUP <pid>) or POST /v1/admin/policy/reload;
an invalid file is refused and the policy in force stays.

Rotating the CA key (no login is refused at any step):
  1. jit-ssh-ca ca generate --out NEW; put the printed line in the JIT_SSH_TRUSTED_CA_KEYS file;
     restart. /v1/ca.pub lists both keys, signed by the old one; servers take it on their next
     refresh (jit-ssh-refresh accepts a new list only when a key it trusts signed it).
  2. Once every server has it: JIT_SSH_CA_KEY=NEW, and the old key's public line in the trusted
     file instead; restart every instance. New certificates are signed by the new key.
  3. When \`ca keys\` says the old key has no live certificate, write @retired before its line:
     /v1/ca.pub names it "# retired" (servers stop trusting it and never take it back, whatever
     list holds it) but it still verifies the audit log it signed.
  Each step gives /v1/ca.pub a new version; jit-ssh-refresh refuses a list older than one it holds.

Exit status: 0 on success, 1 when the operation fails, 2 for a wrong command line or setting.
`;

function settingsOptions() {
  return Object.fromEntries(
    Object.values(SERVER_SETTINGS)
      .filter((s) => s.flag !== null)
      .map((s) => [s.flag!, { type: 'string' as const }]),
  );
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...settingsOptions(),
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      groups: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      // audit, revoke, krl
      user: { type: 'string' },
      principal: { type: 'string' },
      role: { type: 'string' },
      serial: { type: 'string' },
      request: { type: 'string' },
      approver: { type: 'string' },
      'break-glass': { type: 'string' },
      actor: { type: 'string' },
      action: { type: 'string' },
      target: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      all: { type: 'boolean' },
      format: { type: 'string' },
      stream: { type: 'string' },
      out: { type: 'string' },
      sig: { type: 'string' },
      reason: { type: 'string' },
      hostname: { type: 'string' },
      chain: { type: 'boolean' },
      file: { type: 'string' },
      'ca-keys': { type: 'string' },
      checkpoint: { type: 'string' },
      // server-setup
      url: { type: 'string' },
      dir: { type: 'string' },
      'sbin-dir': { type: 'string' },
      'libexec-dir': { type: 'string' },
      'sshd-config-dir': { type: 'string' },
      'cron-dir': { type: 'string' },
      'no-session-guard': { type: 'boolean' },
      warn: { type: 'string' },
      'krl-interval': { type: 'string' },
      print: { type: 'string' },
      // host
      name: { type: 'string' },
      names: { type: 'string' },
      for: { type: 'string' },
      ttl: { type: 'string' },
      kind: { type: 'string' },
      'enroll-token': { type: 'string' },
      'enroll-token-file': { type: 'string' },
      'host-key-dir': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [command, sub, ...rest] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (!command) throw new UsageError('no command given');
  const flags = values as Record<string, string | undefined>;
  switch (command) {
    case 'serve': {
      if (sub !== undefined) throw new UsageError(`serve takes no arguments (got ${JSON.stringify(sub)})`);
      const config = loadServerConfig(process.env, flags);
      await serveUntilSignalled(config, createLogger(config.logLevel));
      return 0;
    }
    case 'ca':
      return caCommand(sub, rest, loadServerConfig(process.env, flags), { json: values.json === true, out: values.out });
    case 'server-setup': {
      if (sub !== undefined) throw new UsageError(`server-setup takes no arguments (got ${JSON.stringify(sub)})`);
      if (values.print !== undefined) {
        const file = SERVER_SCRIPTS[values.print as keyof typeof SERVER_SCRIPTS];
        if (!file) throw new UsageError(`--print takes ${Object.keys(SERVER_SCRIPTS).join(' or ')}`);
        process.stdout.write(await readFile(file, 'utf8'));
        return 0;
      }
      const d = SERVER_SETUP_DEFAULTS;
      const opts = vetServerSetup({
        url: values.url ?? '',
        dir: values.dir ?? d.dir,
        sbinDir: values['sbin-dir'] ?? d.sbinDir,
        libexecDir: values['libexec-dir'] ?? d.libexecDir,
        sshdConfigDir: values['sshd-config-dir'] ?? d.sshdConfigDir,
        cronDir: values['cron-dir'] ?? d.cronDir,
        guard: values['no-session-guard'] !== true,
        warn: values.warn ?? d.warn,
        krlInterval: values['krl-interval'] ?? d.krlInterval,
        enrollToken: await enrollToken(values['enroll-token'], values['enroll-token-file']),
        hostKeyDir: values['host-key-dir'] ?? d.hostKeyDir,
      });
      const config = loadServerConfig(process.env, flags);
      const keys = await loadCaKeys({ ...config, caKeyGenerated: false }, silentLogger);
      process.stdout.write(await serverSetupScript(opts, keys, await readPolicyFile(config.policyPath)));
      if (opts.url.startsWith('http://')) process.stderr.write('jit-ssh-ca: warning: --url is plain http; the refresher verifies signatures, but use https in production\n');
      return 0;
    }
    case 'host':
      return hostCommand(sub, rest, loadServerConfig(process.env, flags), { json: values.json === true, name: values.name, names: values.names, for: values.for, ttl: values.ttl });
    case 'policy': {
      if (sub !== 'check' || rest.length !== 1) throw new UsageError('usage: jit-ssh-ca policy check FILE');
      return policyCheck(rest[0]!);
    }
    case 'audit':
    case 'revoke':
    case 'krl':
      return auditCommand(command, sub, rest, loadServerConfig(process.env, flags), { flags: values, json: values.json === true });
    case 'user':
      return userCommand(sub, rest, loadServerConfig(process.env, flags), {
        json: values.json === true,
        groups: values.groups,
        passwordStdin: values['password-stdin'] === true,
      });
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

await runCli('jit-ssh-ca', () => main(process.argv.slice(2)));
