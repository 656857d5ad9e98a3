// Time to shell: what `jit-ssh ssh ROLE -- true` adds over plain ssh with a
// ready certificate, against a real sshd, for an auto-approved role: with the
// certificate already on disk, and from nothing (a new request, approved by
// policy, a fresh key pair and certificate, then ssh).

import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generate } from 'otplib';
import { launchSshd } from '../../test/helpers/sshd.js';
import { repeat, summarize, type Result } from './measure.js';
import { api, ROOT, login } from './server.js';
import { setUpServer } from './issuance.js';
import { enrolUsers } from './server.js';

const USER = os.userInfo().username;
const RUNS = Number(process.env['BENCH_SHELL_RUNS'] ?? 20);

function exec(file: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env }, (err, _stdout, stderr) => (err ? reject(new Error(`${path.basename(file)} ${args.slice(0, 3).join(' ')}: ${stderr || err.message}`)) : resolve()));
    if (input !== undefined) child.stdin!.end(input);
  });
}

export async function runShell(pgUrl: string, tmp: string): Promise<{ results: Result[]; notes: string[] }> {
  process.stderr.write('time to shell: jit-ssh ssh vs plain ssh, real sshd\n');
  const { bench, server } = await setUpServer(pgUrl, tmp, `jit_ssh_bench_shell_${process.pid}`, 1);
  const sshdDir = path.join(tmp, 'sshd');
  mkdirSync(sshdDir);
  const home = path.join(tmp, 'jit-ssh-home');
  try {
    const caKeys = (await (await fetch(`${server.url}/v1/ca.pub`)).text()).trim().split('\n');
    const sshd = await launchSshd(sshdDir, { caKeys });
    const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: tmp, JIT_SSH_HOME: home, JIT_SSH_SERVER: server.url };
    // A second user for the helper's own login (the first one's TOTP step is used).
    const [u] = await enrolUsers(bench.url, server.secretKey, ['shelluser'], ['bench']);
    // Its API session (to reset between rounds) takes this TOTP step; the helper's login the next one.
    const token = await login(server.url, u!);
    const next = await generate({ secret: u!.secret, epoch: Math.floor(Date.now() / 1000) + 30 });
    await exec(process.execPath, [path.join(ROOT, 'bin/jit-ssh.js'), 'login', '--user', u!.name, '--password-stdin', '--totp', next], env, u!.password);
    const sshOpts = ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'IdentityAgent=none', '-p', String(sshd.port), `${USER}@127.0.0.1`, 'true'];
    const jit = (extra: string[] = []) => exec(process.execPath, [path.join(ROOT, 'bin/jit-ssh.js'), 'ssh', 'shell', ...extra, '--', ...sshOpts], env);
    await jit(['--for', '1h', '--reason', 'time-to-shell benchmark']);
    const key = path.join(home, 'keys', 'shell');
    const plain = await repeat('ssh … true, certificate ready (plain ssh)', RUNS, () => exec('ssh', ['-i', key, '-o', `CertificateFile=${key}-cert.pub`, '-o', 'IdentitiesOnly=yes', ...sshOpts], env));
    const onDisk = await repeat('jit-ssh ssh shell -- … true, certificate on disk', RUNS, () => jit());
    // From nothing: no certificate, no live grant; the policy approves a new request at once.
    const lat: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < Math.ceil(RUNS / 2); i++) {
      // Not timed: no certificate on disk, no live grant.
      rmSync(path.join(home, 'keys'), { recursive: true, force: true });
      const { requests } = await api(server.url, 'GET', '/v1/requests?status=approved', token);
      for (const r of requests) if (r.grant?.live) await api(server.url, 'POST', `/v1/requests/${r.id}/relinquish`, token);
      const t = performance.now();
      await jit(['--for', '1h', '--reason', 'time-to-shell benchmark']);
      lat.push(performance.now() - t);
    }
    const fromNothing = summarize('jit-ssh ssh shell --for 1h -- … true, new request', 1, lat, (performance.now() - t0) / 1000);
    await sshd.stop();
    const notes = [
      `time-to-shell overhead over plain ssh, p50: certificate on disk ${(onDisk.p50ms - plain.p50ms).toFixed(0)} ms, new auto-approved request ${(fromNothing.p50ms - plain.p50ms).toFixed(0)} ms (targets: ≤ 300 ms with the certificate on disk, ≤ 1000 ms from a new request)`,
    ];
    return { results: [plain, onDisk, fromNothing], notes };
  } finally {
    await server.stop();
    await bench.drop();
  }
}
