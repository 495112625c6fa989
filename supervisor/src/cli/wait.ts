// `egress start … --wait`: follow an egress until it ends. Polls ListEgress, prints a line on every
// status change and a progress line every few seconds (rewritten in place on a terminal).
// An interrupt stops the egress and keeps waiting; a second one gives up waiting.
import { EgressStatus, type EgressInfo } from '@livekit/protocol';
import { CliError } from './errors.ts';
import { formatDuration, isEnded, outputProgress, statusName } from './format.ts';

export interface WaitOutput {
  write(s: string): unknown;
  isTTY?: boolean;
}

export interface WaitOptions {
  /** where status and progress lines go */
  out: WaitOutput;
  /** one line notes (stop requested, transient errors); default: out */
  note?: (line: string) => void;
  pollMs?: number;
  progressMs?: number;
  /** consecutive failed polls tolerated before giving up */
  maxPollFailures?: number;
  now?: () => number;
  /**
   * Subscribes to interrupts (Ctrl-C); returns the unsubscribe function. Default: SIGINT and
   * SIGTERM on this process.
   */
  onInterrupt?: (handler: () => void) => () => void;
}

export interface WaitApi {
  list(options: { egressId: string }): Promise<EgressInfo[]>;
  stop(egressId: string): Promise<EgressInfo>;
}

/** Exit code after giving up on a second interrupt (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

const processInterrupts = (handler: () => void): (() => void) => {
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
};

/** The status line: `[  2.1s] EG_abc EGRESS_ACTIVE`. */
export const statusLine = (egressId: string, info: EgressInfo, elapsedMs: number): string =>
  `[${formatDuration(elapsedMs).padStart(7)}] ${egressId} ${statusName(info.status)}${info.error ? `: ${info.error}` : ''}`;

/** The progress line: `[  6.0s] EG_abc EGRESS_ACTIVE elapsed 6.0s, file 12.3 kB, 5.8s`. */
export function progressLine(egressId: string, info: EgressInfo, elapsedMs: number): string {
  const outputs = outputProgress(info);
  return `[${formatDuration(elapsedMs).padStart(7)}] ${egressId} ${statusName(info.status)} elapsed ${formatDuration(elapsedMs)}${outputs ? `, ${outputs}` : ''}`;
}

/**
 * Waits for `egressId` to end and returns its final EgressInfo (whatever the status; the caller
 * decides the exit code). Throws CliError when the server keeps failing or on a second interrupt.
 */
export async function waitForEgress(api: WaitApi, egressId: string, opts: WaitOptions): Promise<EgressInfo> {
  const pollMs = opts.pollMs ?? 500;
  const progressMs = opts.progressMs ?? 2000;
  const maxFailures = opts.maxPollFailures ?? 10;
  const now = opts.now ?? Date.now;
  const out = opts.out;
  const tty = out.isTTY === true;
  const t0 = now();
  let progressShown = false; // a \r progress line is on screen (TTY only)

  const clearProgress = () => {
    if (progressShown) out.write('\r\x1b[K');
    progressShown = false;
  };
  const line = (s: string) => {
    clearProgress();
    out.write(`${s}\n`);
  };
  const note = opts.note ?? line;
  const progress = (s: string) => {
    if (tty) {
      out.write(`\r\x1b[K${s}`);
      progressShown = true;
    } else out.write(`${s}\n`);
  };

  let interrupts = 0;
  let giveUp: ((err: CliError) => void) | undefined;
  const gaveUp = new Promise<never>((_, reject) => (giveUp = reject));
  gaveUp.catch(() => {});
  let lastStatus: EgressStatus | undefined;
  const onInterrupt = () => {
    interrupts++;
    if (interrupts === 1) {
      clearProgress();
      note(`stopping ${egressId} (interrupt again to stop waiting)`);
      api.stop(egressId).then(
        (info) => note(`stop requested: ${egressId} is ${statusName(info.status)}`),
        (err: Error) => note(`could not stop ${egressId}: ${err.message}`),
      );
      return;
    }
    clearProgress();
    const status = lastStatus === undefined ? '' : ` (last seen ${statusName(lastStatus)})`;
    giveUp!(new CliError(`interrupted: stopped waiting for ${egressId}${status}`, EXIT_INTERRUPTED));
  };
  const unsubscribe = (opts.onInterrupt ?? processInterrupts)(onInterrupt);

  let timer: NodeJS.Timeout | undefined;
  const sleep = (ms: number) =>
    Promise.race([
      new Promise<void>((r) => {
        timer = setTimeout(r, ms);
      }),
      gaveUp,
    ]);

  try {
    let failures = 0;
    let lastProgress = t0;
    for (;;) {
      let info: EgressInfo | undefined;
      try {
        const found = await Promise.race([api.list({ egressId }), gaveUp]);
        info = found.find((i) => i.egressId === egressId);
        if (!info) throw new CliError(`egress ${egressId} not found`);
        failures = 0;
      } catch (err) {
        if (interrupts > 1) throw err;
        if (++failures >= maxFailures) throw err;
      }
      if (info) {
        const elapsed = now() - t0;
        if (info.status !== lastStatus) {
          lastStatus = info.status;
          line(statusLine(egressId, info, elapsed));
        }
        if (isEnded(info.status)) {
          clearProgress();
          return info;
        }
        if (now() - lastProgress >= progressMs) {
          lastProgress = now();
          progress(progressLine(egressId, info, elapsed));
        }
      }
      await sleep(pollMs);
    }
  } finally {
    clearTimeout(timer);
    clearProgress();
    unsubscribe();
  }
}
