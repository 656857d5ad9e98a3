import type { Logger } from '../log.js';

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
  };
}
