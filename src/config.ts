// The one reader of the environment. Every setting has an environment variable
// and a flag of the same meaning (config/settings.ts lists them; README,
// Configuration, documents them); flags win. Values are parsed and checked
// once, and every problem is reported, one per line, before anything starts.

export * from './config/types.js';
export { SERVER_SETTINGS } from './config/settings.js';
export { EXAMPLE_POLICY, loadServerConfig, parseSecretKey } from './config/server.js';
export { loadClientConfig } from './config/client.js';
