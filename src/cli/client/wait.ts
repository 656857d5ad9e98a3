// Waiting for a decision: a live status line on a terminal (spinner, elapsed
// time, who is being waited for), quiet polling otherwise. Ctrl-C offers to
// cancel the request.

import type { Api } from './api.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface WaitOptions {
  pollMs: number;
  tty: boolean;
  out: NodeJS.WriteStream;
  /** Asks yes/no on the terminal. */
  confirm: (question: string) => Promise<boolean>;
}

function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Polls until the request leaves `pending`; returns its final state. */
export async function waitForDecision(api: Api, request: { id: string; decision: { reason: string } }, opts: WaitOptions): Promise<any> {
  const start = Date.now();
  let frame = 0;
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  const draw = () => {
    if (!opts.tty) return;
    const line = `${FRAMES[frame++ % FRAMES.length]} waiting ${elapsed(Date.now() - start)} — ${request.decision.reason} (request ${request.id}; Ctrl-C to stop)`;
    opts.out.write(`\r\x1b[K${line.slice(0, (opts.out.columns || 120) - 1)}`);
  };
  const clear = () => opts.tty && opts.out.write('\r\x1b[K');
  if (!opts.tty) opts.out.write(`waiting for a decision on request ${request.id}: ${request.decision.reason}\n`);
  try {
    const spinner = opts.tty ? setInterval(draw, 100) : undefined;
    try {
      let lastPoll = 0;
      for (;;) {
        if (interrupted) {
          clear();
          clearInterval(spinner);
          if (await opts.confirm(`Cancel request ${request.id}? [y/N] `)) {
            await api.post(`/v1/requests/${request.id}/cancel`);
            opts.out.write(`request ${request.id} cancelled\n`);
          } else {
            opts.out.write(`request ${request.id} is still pending; jit-ssh cert ${request.id} fetches the certificate once it is approved\n`);
          }
          process.exitCode = 130;
          return null;
        }
        if (Date.now() - lastPoll >= opts.pollMs) {
          lastPoll = Date.now();
          const r = await api.get(`/v1/requests/${request.id}`);
          if (r.status !== 'pending') {
            clear();
            return r;
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      clearInterval(spinner);
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}
