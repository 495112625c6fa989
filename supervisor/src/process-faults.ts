// The supervisor's last line of defence. An exception or a rejection that no code path handled is
// logged with its stack and counted, and the node goes on: the handlers are separate processes, so
// the running recordings are unharmed, while exiting would lose every one of them. Each event is
// still a bug to fix at its cause; the counter (livekit_egress_process_faults_total) shows them.
// A plain module: the metrics endpoint loads only when its port is on, the count must not depend on it.
import type { Logger } from '@egress/shared/logging.ts';

export const processFaults = { uncaughtException: 0, unhandledRejection: 0 };

function describe(reason: unknown): { error: string; stack?: string } {
  if (reason instanceof Error) return { error: reason.message, stack: reason.stack };
  return { error: String(reason) };
}

export function installLastResort(log: Logger): void {
  process.on('uncaughtException', (err) => {
    processFaults.uncaughtException++;
    log.error('uncaught exception: the node keeps running', describe(err));
  });
  process.on('unhandledRejection', (reason) => {
    processFaults.unhandledRejection++;
    log.error('unhandled rejection: the node keeps running', describe(reason));
  });
}
