// What every command line shares: one clear line on stderr and a non-zero exit
// on failure, never a stack trace for an expected error.

import { ConfigError } from '../config.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Exit codes: 0 success, 1 the operation failed, 2 the command line or configuration is wrong. */
export async function runCli(program: string, main: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await main()) ?? 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const p of e.problems) process.stderr.write(`${program}: ${p}\n`);
      process.exitCode = 2;
    } else if (e instanceof UsageError) {
      process.stderr.write(`${program}: ${e.message} (see ${program} --help)\n`);
      process.exitCode = 2;
    } else if ((e as NodeJS.ErrnoException)?.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${program}: ${(e as Error).message} (see ${program} --help)\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`${program}: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
      process.exitCode = 1;
    }
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ');
}
