// `jit-ssh cert --sk` and hardware-bound roles, as engineers run the helper:
// the real executable against a running server (embedded database, and
// PostgreSQL when configured) and the real ssh-keygen. No security key is
// plugged in here, so `ssh-keygen -t ed25519-sk` fails as it does on a laptop
// without one: the helper must turn that into one line and a non-zero exit.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { POSTGRES_URL, createPostgresDatabase } from '../helpers/db.js';
import { secretOf } from '../helpers/identity.js';
import { tempDir } from '../helpers/keys.js';
import { CA_BIN, HELPER_BIN, cleanEnv, run, startServerProcess, type ServerProcess } from '../helpers/process.js';

const POLICY = `roles:
  vault:
    description: the key vault hosts, hardware-bound
    principals: [keeper]
    requesters: [group:engineering]
    auto_approve: [{groups: [engineering], max_duration: 1h}]
    require_key: fido
  shell:
    principals: [deploy]
    requesters: [group:engineering]
    auto_approve: [{groups: [engineering], max_duration: 1h}]
`;

const backends: Array<{ name: string; skip: string | false }> = [
  { name: 'embedded', skip: false },
  { name: 'postgres', skip: POSTGRES_URL ? false : 'set TEST_DATABASE_URL to run against PostgreSQL' },
];

for (const backend of backends) {
  describe(`jit-ssh --sk and require_key: fido roles (${backend.name})`, { skip: backend.skip }, () => {
    const dir = tempDir();
    const home = path.join(dir, 'home-alice');
    let server: ServerProcess;
    let serverEnv: NodeJS.ProcessEnv;
    let drop = async () => {};

    const env = () => cleanEnv({ JIT_SSH_HOME: home, JIT_SSH_SERVER: server.url, SSH_AUTH_SOCK: '' });
    const helper = (args: string[], input?: string) => run(HELPER_BIN, args, env(), input);
    /** The certificates the server logged for a role (through the admin socket of the running server). */
    const issued = async (role: string) => {
      const r = await run(CA_BIN, ['audit', 'list', '--role', role, '--format', 'json'], serverEnv);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout).certificates as unknown[]).length;
    };
    const grant = async (role: string) => {
      const r = await helper(['request', role, '--for', '10m', '--reason', 'rotate the vault keys', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout).id as string;
    };
    const keyFiles = () => (existsSync(path.join(home, 'keys')) ? readdirSync(path.join(home, 'keys')) : []);

    before(async () => {
      serverEnv = cleanEnv({ JIT_SSH_DATA_DIR: path.join(dir, 'data'), JIT_SSH_POLICY: path.join(dir, 'policy.yaml'), JIT_SSH_PASSWORD_COST: '14' });
      if (backend.name === 'postgres') {
        const db = await createPostgresDatabase();
        drop = db.drop;
        Object.assign(serverEnv, { DATABASE_URL: db.url, JIT_SSH_SECRET_KEY: Buffer.alloc(32, 4).toString('base64') });
      }
      writeFileSync(path.join(dir, 'policy.yaml'), POLICY);
      const added = await run(CA_BIN, ['user', 'add', 'alice', '--groups', 'engineering', '--password-stdin'], serverEnv, 'alice-password-long');
      assert.equal(added.code, 0, added.stderr);
      const secret = secretOf(added.stdout.trim());
      server = await startServerProcess(serverEnv, 60_000, { stopAfter: false });
      const totp = execFileSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' }).trim();
      const login = await helper(['login', '--user', 'alice', '--password-stdin', '--totp', totp], 'alice-password-long\n');
      assert.equal(login.code, 0, login.stderr);
    });
    after(async () => {
      await server?.stop();
      await drop();
    });

    test('fail: a plain key for a require_key: fido role is one line telling to use --sk, exit 1; nothing is issued or kept', async () => {
      const id = await grant('vault');
      const c = await helper(['cert', id, '--no-agent']);
      assert.equal(c.code, 1);
      assert.equal(c.stderr, 'jit-ssh: vault takes only FIDO security keys: plug yours in and run jit-ssh cert --sk\n');
      assert.equal(c.stdout, '');
      // jit-ssh ssh gets as far as the certificate and names its own flag; ssh never runs.
      const s = await helper(['ssh', 'vault', '--', '-p', '1', '127.0.0.1', 'true']);
      assert.equal(s.code, 1);
      assert.equal(s.stderr, 'jit-ssh: vault takes only FIDO security keys: plug yours in and run jit-ssh ssh --sk\n');
      assert.deepEqual(keyFiles().filter((f) => f.startsWith('vault')), []);
      assert.equal(await issued('vault'), 0);
    });

    test('fail: jit-ssh cert --sk without a security key: ssh-keygen -t ed25519-sk fails, the helper says so in one line and exits 1; nothing is written or asked for', async () => {
      const id = await grant('vault');
      for (const args of [['cert', id, '--sk'], ['cert', id, '--sk', '--json']]) {
        const c = await helper(args);
        assert.equal(c.code, 1, c.stderr);
        assert.equal(c.stdout, '', 'nothing on stdout, also with --json');
        const lines = c.stderr.split('\n').filter(Boolean);
        assert.deepEqual(lines, [
          'making a key on your security key for vault: touch it when it blinks, and give its PIN if asked',
          // ssh-keygen's own reason (OpenSSH's wording), and what to do about it.
          'jit-ssh: ssh-keygen -t ed25519-sk -O verify-required failed: Key enrollment failed: device not found (no FIDO security key found: plug one in and try again)',
        ]);
      }
      // Its temporary directory is gone, no key or certificate was kept, and the server was not asked.
      assert.deepEqual(keyFiles().filter((f) => f.startsWith('vault') || f.startsWith('.sk-')), []);
      assert.equal(await issued('vault'), 0);
      // A role without require_key takes plain keys as before.
      const plain = await helper(['cert', await grant('shell'), '--no-agent', '--json']);
      assert.equal(plain.code, 0, plain.stderr);
      assert.deepEqual(JSON.parse(plain.stdout).principals, ['deploy']);
    });

    test('fail: --sk goes with cert and ssh only; --help tells what it does', async () => {
      const wrong = await helper(['roles', '--sk']);
      assert.equal(wrong.code, 2);
      assert.equal(wrong.stderr, 'jit-ssh: --sk goes with jit-ssh cert and jit-ssh ssh (see jit-ssh --help)\n');
      const help = await helper(['--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /jit-ssh cert \[REQUEST_ID\] \[--sk\]/);
      assert.match(help.stdout, /ssh-keygen -t ed25519-sk -O verify-required/);
      const roles = await helper(['roles', '--json']);
      assert.deepEqual(Object.fromEntries(JSON.parse(roles.stdout).roles.map((r: { name: string; require_key: string | null }) => [r.name, r.require_key])), { vault: 'fido', shell: null });
    });
  });
}
