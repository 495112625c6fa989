// A spare handler's browser (handler_pool.browser): the sink, display and Chromium of a web job,
// started before the job is known, for the default page size (1280x720, the H264_720P_30 preset) and
// this node's Chromium options. The next web job takes them when its screen and options are the same,
// and starts its own otherwise; a job of another kind closes them. Launching Chromium and loading
// playwright-core are most of a web job's start (measured ~1.2-1.8 s of 3.3-4.8 s on 2 cores).
//
// The sink cannot be named after an egress not yet known: it is named after this process
// (pulse.ts spareSinkName), and it stays the job's sink. The supervisor's pool hears of the display
// and the browser as they start, and removes all of it if this process dies first.
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '@egress/shared/config/types.ts';
import type { ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import { spareSinkName } from '@egress/shared/pulse.ts';
import { recordProcess, spareScratch } from '@egress/shared/scratch.ts';
import { hostKey, startPageHost, type PageHost, type Screen } from './page-host.ts';

export const WARM_SCREEN: Screen = { width: 1280, height: 720, depth: 24 };

interface Warm {
  key: string;
  host: Promise<PageHost | undefined>;
  /** The browser went away while it waited (a crash): not worth handing over. */
  dead: boolean;
}

let warm: Warm | undefined;

export function prewarm(config: Config, log: Logger, report: (p: ProcessReport) => void): void {
  if (warm) return;
  const dir = spareScratch(config.tmpDir, process.pid);
  mkdirSync(dir, { recursive: true });
  const w: Warm = { key: hostKey(config, WARM_SCREEN), host: Promise.resolve(undefined), dead: false };
  w.host = startPageHost({ screen: WARM_SCREEN, config, sinkName: spareSinkName(process.pid), userDataDir: path.join(dir, 'chromium'), log, report: (p) => (report(p), recordProcess(dir, p, log)) }).then(
    async (host) => {
      void host.browser.died.then(() => (w.dead = true));
      // The default template's files, cached (and compiled) before the job: what is left of loading
      // its page is the room. Opened without a room, it only shows that it has none.
      await host.browser.preload(config.templateBase);
      log.debug('spare browser ready', { display: host.display.name });
      return {
        ...host,
        close: async () => {
          await host.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
    (err: Error) => {
      log.warn('spare browser did not start; the next web job starts its own', { error: err.message });
      return undefined;
    },
  );
  warm = w;
}

/** The spare's browser if it suits a job of `key` (hostKey); else it is closed and undefined returned. */
export async function takeWarm(key: string): Promise<PageHost | undefined> {
  const w = warm;
  warm = undefined;
  const host = await w?.host;
  if (!host) return undefined;
  if (w!.key === key && !w!.dead) return host;
  void host.close();
  return undefined;
}

/** Closes the spare's browser, if it has one: the job is of another kind, or there is no job. */
export async function releaseWarm(): Promise<void> {
  const w = warm;
  warm = undefined;
  await (await w?.host)?.close();
}
