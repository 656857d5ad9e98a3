// The policy in force. It is read once at start and again on SIGHUP or
// POST /v1/admin/policy/reload; a file that does not pass every check is
// refused and the policy in force stays. Requests in flight are unaffected:
// each step reads the policy current at that moment.

import { readFile } from 'node:fs/promises';
import { parsePolicy, PolicyError } from '../core/policy.js';
import type { Policy } from '../core/policy-types.js';

export interface PolicyStore {
  current(): Policy;
  /** Re-reads the file; throws PolicyError (with every problem) and keeps the old policy when it is invalid. */
  reload(): Promise<{ changed: boolean; digest: string; roles: number }>;
  readonly path: string;
}

export async function readPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new PolicyError([`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  return parsePolicy(text);
}

export async function createPolicyStore(path: string): Promise<PolicyStore> {
  // At start-up each problem names the file, as `jit-ssh-ca policy check` does.
  let policy = await readPolicyFile(path).catch((e: unknown) => {
    throw e instanceof PolicyError ? new PolicyError(e.problems.map((p) => (p.startsWith('cannot read ') ? p : `${path}: ${p}`))) : e;
  });
  return {
    path,
    current: () => policy,
    async reload() {
      const next = await readPolicyFile(path);
      const changed = next.digest !== policy.digest;
      policy = next;
      return { changed, digest: next.digest, roles: next.roles.size };
    },
  };
}
