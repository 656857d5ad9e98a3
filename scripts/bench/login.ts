// Login is bounded by the password KDF (scrypt, N = 2^16, 64 MiB each) on
// purpose; what matters besides its rate is that a refusal takes as long for
// an unknown user as for a real one.

import { randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import { createSecretBox } from '../../src/auth/secret-box.js';
import { migrate, openDatabase } from '../../src/db/index.js';
import { createAuthService } from '../../src/services/auth.js';
import { createUserAdmin } from '../../src/services/users.js';
import { measure, type Result } from './measure.js';

export async function runLogin(seconds: number): Promise<Result[]> {
  process.stderr.write('login (bounded by the password KDF, scrypt N=2^16)\n');
  const h = await openDatabase({ databaseUrl: null, dataDir: null });
  try {
    await migrate(h.db);
    const box = createSecretBox(randomBytes(32));
    const settings = { tokenTtl: 3600, adminGroup: 'admins', auditorGroup: 'auditors', lockoutThreshold: 1_000_000, lockoutSeconds: 60, addressFailureLimit: 1_000_000, globalFailureLimit: 1_000_000, loginQueue: 32, passwordCost: 16 };
    const auth = await createAuthService({ db: h.db, box, settings });
    const enrollment = await createUserAdmin({ db: h.db, box, passwordCost: 16 }).add({ name: 'bench', groups: [], password: 'bench-password-long' }, 'os:bench');
    const secret = new URL(enrollment.otpauth_uri).searchParams.get('secret')!;
    let t = Math.floor(Date.now() / 1000);
    const okAuth = await createAuthService({ db: h.db, box, settings, now: () => new Date(t * 1000) });
    const fail = (username: string) => () => auth.login({ username, password: 'wrong-password-here', totp: '000000', clientAddress: 'bench' }).catch(() => {});
    const known = await measure('login refused: existing user, wrong password', 2, fail('bench'), seconds);
    const unknown = await measure('login refused: unknown user', 2, fail('nobody-here'), seconds);
    unknown.extra = { p50_vs_existing: unknown.p50ms / known.p50ms };
    const ok = await measure('login ok (fresh TOTP step each time)', 1, async () => {
      t += 30; // each login needs a time step not used before
      const code = await generate({ secret, epoch: t });
      await okAuth.login({ username: 'bench', password: 'bench-password-long', totp: code, clientAddress: 'bench' });
    }, seconds);
    return [known, unknown, ok];
  } finally {
    await h.close();
  }
}
