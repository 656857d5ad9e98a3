import type { Logger } from '../log.js';
import type { Principal } from '../services/auth.js';

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    /** Set by requireUser() for authenticated routes. */
    principal: Principal;
    /** The OS user behind a local admin request (admin socket only). */
    actor: string;
  };
}
