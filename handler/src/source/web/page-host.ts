// What a page plays on: a null sink, an X display of the page's size and Chromium in both. A web job
// starts its own, or takes the one its spare handler started before the job (warm.ts).
import type { Config } from '@egress/shared/config/types.ts';
import type { ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import { ensurePulse, holdLowLatency, loadNullSink, unloadModule, type NullSink } from '@egress/shared/pulse.ts';
import { chromeFlags } from './chrome-flags.ts';
import type { Chromium } from './chromium.ts';
import { startDisplay, type Display } from './display.ts';

export interface Screen {
  width: number;
  height: number;
  depth: number;
}

export interface PageHost {
  sink: NullSink;
  display: Display;
  browser: Chromium;
  /** gst records the sink's monitor now: the short blocks it needed to start at once are its own (holdLowLatency). */
  recording(): void;
  /** The browser, the display, then the sink. */
  close(): Promise<void>;
}

export interface PageHostOptions {
  screen: Screen;
  config: Config;
  sinkName: string;
  /** The browser profile. */
  userDataDir: string;
  log: Logger;
  report(p: ProcessReport): void;
}

/** Everything of the config and screen that a launched browser depends on: equal keys, interchangeable hosts. */
export const hostKey = (config: Config, screen: Screen): string =>
  JSON.stringify([screen, config.chromePath, config.insecure, config.enableChromeSandbox, config.chromeFlags, config.testOverrides.chromeInitScript ?? null]);

async function closeParts(parts: { browser?: Chromium; display?: Display; sink?: NullSink; latency?: { stop(): void } }): Promise<void> {
  parts.latency?.stop();
  await parts.browser?.close();
  await parts.display?.close();
  if (parts.sink) await unloadModule(parts.sink.module);
}

/** A host that fails to start leaves nothing behind: what did start is closed before it throws. */
export async function startPageHost(o: PageHostOptions): Promise<PageHost> {
  const { screen, config } = o;
  // Loading playwright-core (~0.5 s, ~85 MB: only web jobs and spares that prewarm load it), the sink
  // and the display do not depend on each other.
  const playwright = import('./chromium.ts');
  const sink = ensurePulse().then(() => loadNullSink(o.sinkName));
  const latency = sink.then((s) => holdLowLatency(s.monitor, o.report));
  const display = startDisplay(screen, o.report);
  const [s, d, p, l] = await Promise.allSettled([sink, display, playwright, latency]);
  const parts = {
    sink: s.status === 'fulfilled' ? s.value : undefined,
    display: d.status === 'fulfilled' ? d.value : undefined,
    latency: l.status === 'fulfilled' ? l.value : undefined,
  };
  try {
    for (const r of [s, d, p]) if (r.status === 'rejected') throw r.reason;
    const { launchChromium } = (p as PromiseFulfilledResult<typeof import('./chromium.ts')>).value;
    const browser = await launchChromium({
      executablePath: config.chromePath,
      args: chromeFlags({ ...screen, display: parts.display!.name, insecure: config.insecure, sandbox: config.enableChromeSandbox, extra: config.chromeFlags }),
      sandbox: config.enableChromeSandbox,
      display: parts.display!.name,
      pulseSink: parts.sink!.name,
      userDataDir: o.userDataDir,
      initScript: config.testOverrides.chromeInitScript,
      log: o.log,
      report: o.report,
    });
    const host = { ...parts, sink: parts.sink!, display: parts.display!, browser };
    return { sink: host.sink, display: host.display, browser, recording: () => parts.latency?.stop(), close: () => closeParts(host) };
  } catch (err) {
    await closeParts(parts);
    throw err;
  }
}
