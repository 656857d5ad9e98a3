// `jit-ssh relinquish ID`: give access up before its window ends. The server
// ends the grant and revokes every certificate issued for it, so servers
// refuse them once they have the new KRL; the local copy is useless from then on.

import { UsageError } from '../run.js';
import { session, type Context } from './context.js';

export async function relinquish(ctx: Context, id: string | undefined): Promise<number> {
  if (!id) throw new UsageError('usage: jit-ssh relinquish REQUEST_ID');
  const { api } = await session(ctx);
  const done = await api.post(`/v1/requests/${encodeURIComponent(id)}/relinquish`);
  if (ctx.flags.json) {
    process.stdout.write(JSON.stringify(done, null, 2) + '\n');
    return 0;
  }
  const revoked: string[] = done.revoked ?? [];
  process.stdout.write(`grant ${done.id} for ${done.role} ended now${revoked.length > 0 ? `; revoked ${revoked.length} certificate${revoked.length === 1 ? '' : 's'}: ${revoked.join(' ')}` : ''}\n`);
  if (revoked.length > 0) process.stderr.write('servers refuse them once they fetch the new KRL (their jit-ssh-refresh does, every few minutes)\n');
  return 0;
}
