// The server alone, as a process: `node --import tsx src/main.ts` serves with
// the settings of the environment, as `jit-ssh-ca serve` does (which also
// takes them as flags). The server itself is built in server.ts; the CA key
// is chosen in services/ca-signer.ts (openCaSigner).

import { loadServerConfig } from './config.js';
import { createLogger } from './log.js';
import { serveUntilSignalled } from './server.js';
import { runCli } from './cli/run.js';

await runCli('jit-ssh-ca', async () => {
  const config = loadServerConfig(process.env, {});
  await serveUntilSignalled(config, createLogger(config.logLevel));
  return 0;
});
