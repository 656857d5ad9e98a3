// `jit-ssh-ca policy check FILE`

import { readFile } from 'node:fs/promises';
import { parsePolicy, PolicyError } from '../core/policy.js';

export async function policyCheck(file: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const policy = parsePolicy(text);
    const names = [...policy.roles.keys()];
    process.stdout.write(`${file}: ok, ${names.length} role${names.length === 1 ? '' : 's'} (${names.join(', ')})\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    for (const p of e.problems) process.stderr.write(`${file}: ${p}\n`);
    return 1;
  }
}
