import type { Actor } from '../core/actor.js';
import type { Logger } from '../log.js';
import type { Principal } from '../services/auth.js';

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    /** Set by requireUser() for authenticated routes. */
    principal: Principal;
    /** The OS user behind a local admin request, as the kernel named it (admin socket only). */
    actor: Actor;
  };
}
