// `jit-ssh-ca server-setup`: what a server needs to trust the CA, printed as
// one POSIX sh script an operator reads and then runs as root on the server
// (`jit-ssh-ca server-setup --url https://ca.example.com | ssh root@web-1 sh`).
// It embeds the CA keys from this host (trust never comes from the network),
// installs the refresher and the session guard, fetches the first KRL before
// sshd is told to use it, and writes an sshd drop-in; reloading sshd is left to
// the operator, after `sshd -t`.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Policy } from '../core/policy-types.js';
import { caKeysBody } from '../services/ca-keys.js';
import { UsageError } from './run.js';

export const SERVER_SCRIPTS = {
  refresh: fileURLToPath(new URL('../server-side/jit-ssh-refresh', import.meta.url)),
  'session-guard': fileURLToPath(new URL('../server-side/jit-ssh-session-guard', import.meta.url)),
} as const;

export interface ServerSetupOptions {
  /** The CA as servers reach it. */
  url: string;
  /** Where ca.pub and revoked.krl live on the server. */
  dir: string;
  /** Where the two scripts are installed. */
  sbinDir: string;
  libexecDir: string;
  /** sshd_config.d (Debian, Ubuntu, Fedora, RHEL 9 include it from sshd_config). */
  sshdConfigDir: string;
  cronDir: string;
  /** Install the session guard as ForceCommand. */
  guard: boolean;
  /** Warning before the end of a session. */
  warn: string;
  /** How often the guard checks an open session's certificate against the KRL. */
  krlInterval: string;
  /** A one-time enrollment token (`jit-ssh-ca host token`): the refresher gets host certificates with it. */
  enrollToken?: string;
  /** Where the host keys are (ssh_host_*_key.pub); their certificates go beside them. */
  hostKeyDir: string;
}

export const SERVER_SETUP_DEFAULTS = {
  dir: '/etc/ssh/jit-ssh',
  sbinDir: '/usr/local/sbin',
  libexecDir: '/usr/local/libexec',
  sshdConfigDir: '/etc/ssh/sshd_config.d',
  cronDir: '/etc/cron.d',
  warn: '5m',
  krlInterval: '30s',
  hostKeyDir: '/etc/ssh',
};

/** Single-quotes a value for sh. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function vetPath(name: string, value: string): string {
  if (!/^\/[A-Za-z0-9._/-]*$/.test(value)) throw new UsageError(`--${name} must be an absolute path of plain characters (got ${JSON.stringify(value)})`);
  return value.replace(/\/+$/, '') || '/';
}

export function vetServerSetup(o: ServerSetupOptions): ServerSetupOptions {
  if (!o.url) throw new UsageError('--url URL is required: the address your servers reach the CA at (e.g. https://ca.example.com)');
  if (!/^https?:\/\/[A-Za-z0-9.:[\]-]+(:\d+)?(\/[A-Za-z0-9._~/-]*)?$/.test(o.url) || !URL.canParse(o.url)) throw new UsageError(`--url must be an http(s) URL (got ${JSON.stringify(o.url)})`);
  if (!/^\d+[smh]?$/.test(o.warn)) throw new UsageError('--warn must be a duration such as 5m');
  if (!/^0*[1-9]\d*[smh]?$/.test(o.krlInterval)) throw new UsageError('--krl-interval must be a duration over 0 such as 30s');
  if (o.enrollToken !== undefined && !/^jhe_[A-Za-z0-9_-]{20,124}$/.test(o.enrollToken)) throw new UsageError('--enroll-token must be a jhe_… token as jit-ssh-ca host token printed it');
  return {
    ...o,
    hostKeyDir: vetPath('host-key-dir', o.hostKeyDir),
    url: o.url.replace(/\/+$/, ''),
    dir: vetPath('dir', o.dir),
    sbinDir: vetPath('sbin-dir', o.sbinDir),
    libexecDir: vetPath('libexec-dir', o.libexecDir),
    sshdConfigDir: vetPath('sshd-config-dir', o.sshdConfigDir),
    cronDir: vetPath('cron-dir', o.cronDir),
  };
}

/** The enrollment token of `--enroll-token TOKEN` or `--enroll-token-file FILE` (`-`: standard input), or none. */
export async function enrollToken(given: string | undefined, file: string | undefined): Promise<string | undefined> {
  if (given !== undefined && file !== undefined) throw new UsageError('give one of --enroll-token and --enroll-token-file');
  if (file === undefined) return given;
  let text: string;
  try {
    text = file === '-' ? await readStdinText() : await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--enroll-token-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return text.trim();
}

async function readStdinText(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The sshd_config lines for a server, as the drop-in file holds them. */
export function sshdConfigLines(o: ServerSetupOptions): string[] {
  return [
    `TrustedUserCAKeys ${o.dir}/ca.pub`,
    `RevokedKeys ${o.dir}/revoked.krl`,
    ...(o.guard ? ['ExposeAuthInfo yes', `ForceCommand ${o.libexecDir}/jit-ssh-session-guard --warn ${o.warn} --krl ${o.dir}/revoked.krl --krl-interval ${o.krlInterval}`] : []),
  ];
}

function principalsGuidance(policy: Policy): string[] {
  const lines = ['# Principals: sshd lets a certificate log in to an account named by one of its', '# principals. The roles of the policy in force and the accounts they reach:'];
  for (const [name, role] of policy.roles) lines.push(`#   ${name}: ${role.principals.join(', ')}`);
  lines.push(
    '# To map principals to accounts differently (say, principal web-prod for account',
    '# deploy), add to the drop-in: AuthorizedPrincipalsFile /etc/ssh/jit-ssh/principals/%u',
    '# and list in that file, per account, the principals it accepts (one per line).',
  );
  return lines;
}

/** The CA keys a server starts from: the trusted lines, and the retired ones as `# retired` comments it must never trust again. */
export interface SetupCaKeys {
  publicKeys: readonly string[];
  retiredKeys: readonly string[];
}

export async function serverSetupScript(o: ServerSetupOptions, caKeys: SetupCaKeys, policy: Policy): Promise<string> {
  const refresh = await readFile(SERVER_SCRIPTS.refresh, 'utf8');
  const guard = await readFile(SERVER_SCRIPTS['session-guard'], 'utf8');
  const heredoc = (file: string, body: string, mode: string) => {
    if (body.includes('\nJIT_SSH_EOF\n')) throw new Error('a script holds the here-document delimiter');
    return [`cat >"$tmp" <<'JIT_SSH_EOF'`, body.trimEnd(), 'JIT_SSH_EOF', `install -m ${mode} "$tmp" ${q(file)}`];
  };
  const refreshBin = `${o.sbinDir}/jit-ssh-refresh`;
  const keyDirArgs = o.hostKeyDir === SERVER_SETUP_DEFAULTS.hostKeyDir ? [] : ['--host-key-dir', o.hostKeyDir];
  const cronLine = `*/5 * * * * root ${[refreshBin, ...keyDirArgs, o.url, o.dir].join(' ')}`;
  const hostCerts = o.enrollToken !== undefined;
  return [
    '#!/bin/sh',
    `# jit-ssh server setup for the CA at ${o.url}. Read it, then run it as root on the server.`,
    '# Keep a session or console open until a certificate login has worked.',
    'set -eu',
    'umask 022',
    'tmp=$(mktemp)',
    `trap 'rm -f "$tmp"' EXIT`,
    `install -d -m 0755 ${q(o.dir)} ${q(o.sbinDir)} ${o.guard ? q(o.libexecDir) + ' ' : ''}${q(o.sshdConfigDir)} ${q(o.cronDir)}`,
    '',
    '# 1. The CA keys, from the CA host itself (the refresher accepts later lists only when one of these signed them;',
    '#    a key named "# retired" is never trusted again, whatever list holds it).',
    ...heredoc(`${o.dir}/ca.pub`, caKeysBody(caKeys.publicKeys, caKeys.retiredKeys), '0644'),
    '',
    '# 2. The refresher, and the first KRL before sshd is told about it (a missing RevokedKeys file refuses every login).',
    `#    It keeps ${o.dir}/jit-ssh-refresh.state (the versions it accepted, the keys it saw retired) and refuses`,
    '#    anything older: keep that file. It exits 3, with a warning, once what it holds was signed more than',
    '#    JIT_SSH_REFRESH_MAX_AGE seconds ago (default 1800; the CA re-signs every minute): alert on that.',
    ...heredoc(refreshBin, refresh, '0755'),
    ...(hostCerts
      ? [
          `#    With the one-time enrollment token below (it works once, and only until it expires: do not keep this`,
          `#    script), the first run posts the host keys ${o.hostKeyDir}/ssh_host_*_key.pub and installs their`,
          '#    certificates beside them; later runs renew them with the credential it keeps, when a third of their',
          '#    validity is left, and reload sshd.',
          'umask 077',
          `printf '%s\n' ${q(o.enrollToken!)} >"$tmp"`,
          `install -m 0600 "$tmp" ${q(`${o.dir}/host-enroll.token`)}`,
          'umask 022',
        ]
      : []),
    // sshd is reloaded by the operator, once the drop-in is in place.
    `${hostCerts ? 'JIT_SSH_REFRESH_SSHD_RELOAD= ' : ''}${[refreshBin, ...keyDirArgs, o.url, o.dir].map(q).join(' ')}`,
    `test -s ${q(`${o.dir}/revoked.krl`)}`,
    `printf '%s\\n' ${q(cronLine)} >"$tmp"`,
    `install -m 0644 "$tmp" ${q(`${o.cronDir}/jit-ssh`)}`,
    '',
    ...(o.guard
      ? [
          '# 3. The session guard: sshd checks a certificate only at login; this ends the session when the certificate ends',
          '#    or the KRL revokes it.',
          ...heredoc(`${o.libexecDir}/jit-ssh-session-guard`, guard, '0755'),
          '',
        ]
      : []),
    `# ${o.guard ? 4 : 3}. sshd: trust the CA, refuse what it revoked${o.guard ? ', end sessions with their grant' : ''}${hostCerts ? ', present the host certificates' : ''}.`,
    ...principalsGuidance(policy),
    `cat >"$tmp" <<'JIT_SSH_EOF'`,
    '# Managed by jit-ssh-ca server-setup.',
    ...sshdConfigLines(o),
    'JIT_SSH_EOF',
    ...(hostCerts
      ? [
          `for cert in ${q(o.hostKeyDir)}/ssh_host_*_key-cert.pub; do`,
          `  [ -f "$cert" ] && printf 'HostCertificate %s\n' "$cert" >>"$tmp"`,
          'done',
          `grep -q '^HostCertificate ' "$tmp"`,
        ]
      : []),
    `install -m 0644 "$tmp" ${q(`${o.sshdConfigDir}/50-jit-ssh.conf`)}`,
    '',
    `echo 'jit-ssh: installed. Check and reload sshd: sshd -t && (systemctl reload ssh || systemctl reload sshd)' >&2`,
    '',
  ].join('\n');
}
