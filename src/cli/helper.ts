// `jit-ssh`: the engineer's login helper.

import { parseArgs } from 'node:util';
import { runCli, UsageError } from './run.js';

const HELP = `jit-ssh — just-in-time SSH access from the terminal

Usage:
  jit-ssh --help        this text

Settings:
  JIT_SSH_SERVER        the jit-ssh-ca server (default http://127.0.0.1:8080)
  JIT_SSH_HOME          session and keys (default ~/.jit-ssh)
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  if (values.help || positionals[0] === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (!positionals[0]) throw new UsageError('no command given');
  throw new UsageError(`unknown command ${JSON.stringify(positionals[0])}`);
}

await runCli('jit-ssh', () => main(process.argv.slice(2)));
