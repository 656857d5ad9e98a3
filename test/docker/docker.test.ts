// The container image and compose file, checked without a Docker engine:
// every COPY source exists and .dockerignore keeps it in the build context;
// the image is multi-stage, runs as a non-root user with a health check and
// MALLOC_ARENA_MAX; what the final stage copies is enough to run the service
// (started here from exactly those files, web pages included) and its health
// check answers; the compose file's services, settings, ports, volumes and
// health checks agree with config.ts, the Dockerfiles, the policy and README.

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { loadServerConfig, SERVER_SETTINGS } from '../../src/config.js';
import { parsePolicy } from '../../src/core/policy.js';
import { SERVER_SETUP_DEFAULTS, sshdConfigLines } from '../../src/cli/server-setup.js';
import { tempDir } from '../helpers/keys.js';
import { freePort } from '../helpers/net.js';
import { ROOT } from '../helpers/process.js';

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** A Dockerfile's instructions, continuation lines joined, comments dropped, each tagged with its stage. */
function parseDockerfile(file: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*#/.test(raw) && pending === '') continue;
    if (/^\s*#/.test(raw)) continue; // a comment inside a continued instruction
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '') continue;
    const m = /^(\w+)\s+(.*)$/s.exec(full)!;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2]!.trim(), stage });
  }
  return out;
}

/** COPY's flags, sources and destination (shell form). */
function copyParts(args: string): { from: string | null; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const rest = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length) ?? null;
  return { from, sources: rest.slice(0, -1), dest: rest.at(-1)! };
}

/** Whether .dockerignore leaves `rel` (a path in the build context) out: last matching pattern wins, `!` re-includes. */
function ignored(rel: string, patterns: string[]): boolean {
  const toRe = (p: string) => new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\0/g, '.*') + '(/.*)?$');
  let out = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const p = path.posix.normalize((neg ? raw.slice(1) : raw).replace(/^\/+/, ''));
    if (toRe(p).test(rel)) out = !neg;
  }
  return out;
}

const DOCKERIGNORE = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

const IMAGE = path.join(ROOT, 'docker', 'Dockerfile');
const HOST_IMAGE = path.join(ROOT, 'docker', 'sshd-host', 'Dockerfile');
const COMPOSE = path.join(ROOT, 'docker', 'compose.yaml');
const SETTING_ENVS = new Set<string>(Object.values(SERVER_SETTINGS).map((s) => s.env));

/** ENV of the final stage as a map (`ENV A=1 B=2` form). */
function envOf(ins: Instruction[]): Record<string, string> {
  const last = Math.max(...ins.map((i) => i.stage));
  const env: Record<string, string> = {};
  for (const i of ins.filter((x) => x.op === 'ENV' && x.stage === last)) {
    for (const [, k, v] of i.args.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
  }
  return env;
}

const json = (args: string) => JSON.parse(args) as string[];

describe('docker/Dockerfile', () => {
  const ins = parseDockerfile(IMAGE);
  const last = Math.max(...ins.map((i) => i.stage));
  const final = ins.filter((i) => i.stage === last);

  test('ok: every COPY source from the build context exists and .dockerignore does not leave it out', () => {
    for (const file of [IMAGE, HOST_IMAGE]) {
      const copies = parseDockerfile(file).filter((i) => i.op === 'COPY' && copyParts(i.args).from === null);
      assert.ok(copies.length >= 3, file);
      for (const c of copies) {
        for (const src of copyParts(c.args).sources) {
          assert.ok(existsSync(path.join(ROOT, src)), `${path.relative(ROOT, file)}: COPY ${src}: no such file in the repository`);
          assert.ok(!ignored(src, DOCKERIGNORE), `${path.relative(ROOT, file)}: COPY ${src} is excluded by .dockerignore`);
        }
      }
    }
    // The matcher itself: what .dockerignore is there to leave out is left out.
    for (const p of ['node_modules', 'node_modules/hono/package.json', 'data/ca_key', '.git/config', 'test/config.test.ts']) assert.ok(ignored(p, DOCKERIGNORE), p);
  });

  test('ok: multi-stage, only production dependencies, a non-root user, a health check, MALLOC_ARENA_MAX as npm start sets it', () => {
    assert.ok(last >= 1, 'one build stage for dependencies, one to run');
    assert.ok(ins.some((i) => i.stage < last && /npm ci --omit=dev/.test(i.args)));
    const from = final.filter((i) => i.op === 'COPY' && copyParts(i.args).from !== null);
    assert.deepEqual(from.map((i) => copyParts(i.args).sources), [['/app/node_modules']], 'the final stage takes only node_modules from the build stage');
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args;
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user}`);
    assert.equal(final.filter((i) => i.op === 'HEALTHCHECK').length, 1);
    const env = envOf(ins);
    const start = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    assert.equal(`MALLOC_ARENA_MAX=${env['MALLOC_ARENA_MAX']}`, /MALLOC_ARENA_MAX=\d+/.exec(start)![0]);
    for (const k of Object.keys(env)) assert.ok(SETTING_ENVS.has(k) || ['NODE_ENV', 'MALLOC_ARENA_MAX'].includes(k), `ENV ${k} is no setting of config.ts`);
    assert.equal(env['HOST'], '0.0.0.0', 'reachable from outside the container');
    assert.deepEqual(final.filter((i) => i.op === 'EXPOSE').map((i) => i.args), [env['PORT']]);
  });

  test('ok: the entry point and the health check script are files the image copies', () => {
    const entry = json(final.find((i) => i.op === 'ENTRYPOINT')!.args);
    const cmd = json(final.find((i) => i.op === 'CMD')!.args);
    assert.deepEqual([...entry, ...cmd], ['node', 'bin/jit-ssh-ca.js', 'serve']);
    const health = /CMD\s+(\[.*\])/.exec(final.find((i) => i.op === 'HEALTHCHECK')!.args)![1]!;
    assert.deepEqual(json(health), ['node', '/app/docker/healthcheck.mjs']);
    const workdir = final.filter((i) => i.op === 'WORKDIR').at(-1)!.args;
    const copied = final.filter((i) => i.op === 'COPY' && copyParts(i.args).from === null).flatMap((i) => {
      const { sources, dest } = copyParts(i.args);
      return sources.map((s) => path.posix.join(workdir, dest.endsWith('/') || sources.length > 1 ? path.posix.join(dest, path.posix.basename(s)) : dest));
    });
    for (const needed of ['/app/bin', '/app/src', '/app/package.json', '/app/tsconfig.json', '/app/docker/healthcheck.mjs']) assert.ok(copied.includes(needed), `${needed} not in ${copied.join(', ')}`);
    // Runtime imports are production dependencies, or `npm ci --omit=dev` leaves them out.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const srcFiles = execFileSync('git', ['ls-files', 'src', 'bin'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter((f) => /\.(ts|tsx|js)$/.test(f));
    const packages = new Set<string>();
    for (const f of srcFiles) {
      const text = readFileSync(path.join(ROOT, f), 'utf8');
      const specs = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)|^\s*import\s+'([^']+)'/gm)].map((m) => m[1] ?? m[2] ?? m[3]!);
      for (const spec of specs) {
        if (spec.startsWith('node:') || spec.startsWith('.')) continue;
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    assert.ok(packages.has('tsx') && packages.has('hono'), [...packages].join(', '));
    for (const p of packages) assert.ok(p in pkg.dependencies, `${p} is imported at run time but is not in dependencies`);
  });

  test('ok: the files the final stage copies run the service: API, web pages, and the health check (http and https)', async () => {
    // The image's /app, built from the COPY lines (node_modules from the repository's install).
    const app = path.join(tempDir(), 'app');
    mkdirSync(app);
    for (const i of final.filter((x) => x.op === 'COPY' && copyParts(x.args).from === null)) {
      const { sources, dest } = copyParts(i.args);
      for (const s of sources) {
        const target = dest.endsWith('/') || sources.length > 1 ? path.join(app, dest, path.basename(s)) : path.join(app, dest);
        cpSync(path.join(ROOT, s), target, { recursive: true });
      }
    }
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'));
    const dir = tempDir();
    const cert = path.join(dir, 'tls.crt');
    const key = path.join(dir, 'tls.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=jit-ssh-ca'], { stdio: 'ignore' });
    chmodSync(key, 0o600);
    const entry = [...json(final.find((i) => i.op === 'ENTRYPOINT')!.args), ...json(final.find((i) => i.op === 'CMD')!.args)];
    const health = json(/CMD\s+(\[.*\])/.exec(final.find((i) => i.op === 'HEALTHCHECK')!.args)![1]!).map((a) => a.replace(/^\/app\//, `${app}/`));

    for (const tls of [false, true]) {
      const port = await freePort();
      // The image's environment, but on loopback and a port of our own, and no developer settings.
      const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('JIT_SSH_') && !['DATABASE_URL', 'HOST', 'PORT', 'TEST_DATABASE_URL'].includes(k)));
      const env = { ...base, ...envOf(ins), HOST: '127.0.0.1', PORT: String(port), JIT_SSH_DATA_DIR: path.join(dir, `data-${tls}`), ...(tls ? { JIT_SSH_TLS_CERT: cert, JIT_SSH_TLS_KEY: key } : {}) };
      const healthcheck = () => spawnSync(process.execPath, health.slice(1), { cwd: app, env, encoding: 'utf8' });
      assert.notEqual(healthcheck().status, 0, 'healthy before the service runs');
      const child = spawn(entry[0] === 'node' ? process.execPath : entry[0]!, entry.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      try {
        for (let i = 0; i < 300 && !out.includes('"msg":"listening"'); i++) {
          assert.equal(child.exitCode, null, out);
          await sleep(100);
        }
        assert.match(out, /"msg":"listening"/);
        const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
        assert.ok(out.includes(`"url":"${url}"`), out);
        const h = healthcheck();
        assert.equal(h.status, 0, h.stderr);
        if (!tls) {
          // The web pages are JSX: they need tsconfig.json's settings at run time.
          const page = await fetch(`${url}/`);
          assert.equal(page.status, 200, out.split('\n').filter((l) => l.includes('error')).join('\n'));
          assert.match(await page.text(), /<h1>jit-ssh<\/h1>/);
          assert.equal((await fetch(`${url}/ui/login`)).status, 200);
          assert.match(await (await fetch(`${url}/v1/ca.pub`)).text(), /^ssh-ed25519 /m);
        }
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    }
  });
});

describe('docker/compose.yaml', () => {
  const compose = YAML.parse(readFileSync(COMPOSE, 'utf8')) as { services: Record<string, any>; volumes: Record<string, unknown> };
  const services = compose.services;
  const imageEnv = envOf(parseDockerfile(IMAGE));

  test('ok: PostgreSQL, the CA and an example sshd host, each built from this repository or a stock image, each with a health check', () => {
    assert.deepEqual(Object.keys(services).sort(), ['jit-ssh-ca', 'postgres', 'sshd-host']);
    for (const [name, s] of Object.entries(services)) {
      assert.ok(s.healthcheck?.test, `${name} has no health check`);
      if (s.build) {
        const context = path.resolve(path.dirname(COMPOSE), s.build.context);
        assert.equal(context, ROOT, `${name}: build from the repository root (the Dockerfiles COPY src/...)`);
        assert.ok(existsSync(path.join(context, s.build.dockerfile)), `${name}: ${s.build.dockerfile}`);
      } else {
        assert.match(s.image, /^postgres:\d+/);
      }
    }
    assert.equal(path.join(ROOT, services['jit-ssh-ca'].build.dockerfile), IMAGE);
    assert.equal(path.join(ROOT, services['sshd-host'].build.dockerfile), HOST_IMAGE);
    // Start order: the database, then the CA, then the host that fetches the CA's keys.
    assert.equal(services['jit-ssh-ca'].depends_on.postgres.condition, 'service_healthy');
    assert.equal(services['sshd-host'].depends_on['jit-ssh-ca'].condition, 'service_healthy');
    assert.deepEqual(services['jit-ssh-ca'].healthcheck.test, ['CMD', 'node', '/app/docker/healthcheck.mjs']);
  });

  test('ok: the CA service sets only settings config.ts knows, and they load (PostgreSQL, its shared secret key, the policy)', () => {
    const env = services['jit-ssh-ca'].environment as Record<string, string>;
    for (const k of Object.keys(env)) assert.ok(SETTING_ENVS.has(k), `${k} is no setting of config.ts`);
    const vars = [...readFileSync(COMPOSE, 'utf8').matchAll(/\$\{(\w+)/g)].map((m) => m[1]!);
    assert.deepEqual([...new Set(vars)].sort(), ['JIT_SSH_SECRET_KEY', 'POSTGRES_PASSWORD']);
    const sample: Record<string, string> = { POSTGRES_PASSWORD: 'a1b2c3', JIT_SSH_SECRET_KEY: Buffer.alloc(32, 1).toString('base64') };
    const interpolated = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{(\w+)(:\?[^}]*)?\}/g, (_, n: string) => sample[n]!)]));
    // The policy file is mounted into the container: read it from where the mount takes it.
    const mounts = (services['jit-ssh-ca'].volumes as string[]).map((v) => v.split(':'));
    const policyMount = mounts.find(([, inside]) => inside === interpolated['JIT_SSH_POLICY'])!;
    assert.ok(policyMount, 'JIT_SSH_POLICY names a mounted file');
    const policyFile = path.resolve(path.dirname(COMPOSE), policyMount[0]!);
    const config = loadServerConfig({ ...imageEnv, ...interpolated, JIT_SSH_POLICY: policyFile }, {}, '/');
    assert.equal(config.databaseUrl, 'postgres://jit_ssh:a1b2c3@postgres:5432/jit_ssh');
    assert.ok(config.secretKey);
    const pg = services['postgres'].environment as Record<string, string>;
    const db = new URL(config.databaseUrl!);
    assert.deepEqual([db.username, db.hostname, db.pathname.slice(1)], [pg['POSTGRES_USER'], 'postgres', pg['POSTGRES_DB']]);
    // The data directory is a named volume, so the CA key survives the container.
    assert.ok(mounts.some(([vol, inside]) => vol === 'ca-data' && inside === imageEnv['JIT_SSH_DATA_DIR']));
    assert.ok('ca-data' in compose.volumes && 'pgdata' in compose.volumes);
  });

  test('ok: ports are published on loopback only, to the ports the services listen on; the host reaches the CA by its service name', () => {
    assert.deepEqual(services['jit-ssh-ca'].ports, [`127.0.0.1:8080:${imageEnv['PORT']}`]);
    assert.deepEqual(services['sshd-host'].ports, ['127.0.0.1:2222:22']);
    assert.equal(services['postgres'].ports, undefined, 'the database is not published');
    assert.equal(services['sshd-host'].environment.JIT_SSH_CA_URL, `http://jit-ssh-ca:${imageEnv['PORT']}`);
  });

  test('ok: the example host: its account is the policy\'s principal, its sshd drop-in is server-setup\'s, its scripts parse', () => {
    const policy = parsePolicy(readFileSync(path.join(ROOT, 'docker', 'policy.yaml'), 'utf8'));
    const principals = [...policy.roles.values()].flatMap((r) => r.principals);
    const hostFile = readFileSync(HOST_IMAGE, 'utf8');
    for (const p of principals) assert.match(hostFile, new RegExp(`useradd [^\\n]*\\b${p}\\b`), `no account ${p} on the example host`);
    const entrypoint = path.join(ROOT, 'docker', 'sshd-host', 'entrypoint.sh');
    const r = spawnSync('sh', ['-n', entrypoint], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(statSync(entrypoint).mode & 0o100, 'entrypoint.sh is executable');
    const script = readFileSync(entrypoint, 'utf8');
    const lines = sshdConfigLines({ ...SERVER_SETUP_DEFAULTS, url: 'http://jit-ssh-ca:8080', guard: true });
    for (const l of lines) assert.ok(script.includes(l.replace(SERVER_SETUP_DEFAULTS.dir, '$dir')), `the drop-in lacks: ${l}`);
    // The KRL is fetched before sshd starts: a missing RevokedKeys file refuses every login.
    assert.ok(script.indexOf('jit-ssh-refresh "$ca" "$dir"') < script.indexOf('exec /usr/sbin/sshd'));
    assert.match(hostFile, /COPY src\/server-side\/jit-ssh-refresh \/usr\/local\/sbin\/jit-ssh-refresh/);
    assert.match(hostFile, /COPY src\/server-side\/jit-ssh-session-guard \/usr\/local\/libexec\/jit-ssh-session-guard/);
  });

  test('ok: README runs it the way the compose file expects', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = /## Running with Docker\n([\s\S]*?)\n## /.exec(readme)?.[1];
    assert.ok(section, 'README has no "Running with Docker" section');
    for (const needle of ['docker compose -f docker/compose.yaml up', 'POSTGRES_PASSWORD', 'JIT_SSH_SECRET_KEY', 'jit-ssh-ca user add', '127.0.0.1:8080', '-p 2222', 'docker build -f docker/Dockerfile']) {
      assert.ok(section.includes(needle), `README's Docker section does not mention ${needle}`);
    }
  });
});
