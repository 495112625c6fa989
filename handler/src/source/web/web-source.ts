// A web source (egress-behaviour §9.1): the job's own PulseAudio null sink and X display, Chromium
// showing the page in them, and the page's start and end signals. gst captures the display and
// the sink's monitor itself (pipeline/encode.ts); nothing goes through Node.
import path from 'node:path';
import type { Config } from '@egress/shared/config/types.ts';
import { EgressError } from '@egress/shared/errors.ts';
import type { ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { ensurePulse, loadNullSink, unloadModule, type NullSink } from '@egress/shared/pulse.ts';
import type { CaptureInput } from '../../pipeline/encode.ts';
import type { CaptureSource } from '../source.ts';
import { chromeFlags } from './chrome-flags.ts';
import type { Chromium } from './chromium.ts';
import { startDisplay, type Display } from './display.ts';
import { pageUrl, type WebSourceConfig } from './page-url.ts';

/** The screen of an audio-only page: it is rendered but not recorded. */
const AUDIO_ONLY_SCREEN = { width: 1280, height: 720, depth: 24 };

export interface WebSourceOptions {
  plan: PipelineConfig;
  source: WebSourceConfig;
  config: Config;
  log: Logger;
  /** The job's scratch directory (the browser profile goes there). */
  scratch: string;
  report(p: ProcessReport): void;
  /** The recorder's room connection, for template pages. */
  room(): Promise<{ wsUrl: string; token: string }>;
}

export class WebSource implements CaptureSource {
  readonly started: Promise<void>;
  readonly ended: Promise<{ reason: string; error?: EgressError }>;
  private start!: () => void;
  private end!: (e: { reason: string; error?: EgressError }) => void;
  private sink?: Promise<NullSink>;
  private display?: Promise<Display>;
  private browser?: Promise<Chromium>;
  private closing?: Promise<void>;

  constructor(private readonly o: WebSourceOptions) {
    this.started = new Promise((r) => (this.start = r));
    this.ended = new Promise((r) => (this.end = r));
  }

  async prepare(): Promise<CaptureInput> {
    const { plan, source, config } = this.o;
    const screen = plan.video ? { width: plan.video.width, height: plan.video.height, depth: plan.video.depth } : AUDIO_ONLY_SCREEN;
    // The sink, the display and loading playwright-core (~0.5 s, ~85 MB: only web jobs load it) do
    // not depend on each other; close() waits for whichever started.
    const playwright = import('./chromium.ts');
    this.sink = ensurePulse().then(() => loadNullSink(plan.egressId));
    this.display = startDisplay(screen, this.o.report);
    const [sink, display, { launchChromium }] = await Promise.all([this.sink, this.display, playwright]);
    const url = pageUrl(source, source.template ? await this.o.room() : undefined);
    if (this.closing) throw new EgressError('aborted', 'web source closed while starting');
    this.browser = launchChromium({
      executablePath: config.chromePath,
      args: chromeFlags({ ...screen, display: display.name, insecure: config.insecure, sandbox: config.enableChromeSandbox, extra: config.chromeFlags }),
      sandbox: config.enableChromeSandbox,
      display: display.name,
      pulseSink: sink.name,
      userDataDir: path.join(this.o.scratch, 'chromium'),
      initScript: config.testOverrides.chromeInitScript,
      log: this.o.log,
      report: this.o.report,
    });
    const browser = await this.browser;
    browser.onSignal((s) => {
      if (s === 'start') this.start();
      else this.end({ reason: 'Source closed' });
    });
    void browser.died.then((error) => this.end({ reason: 'Failure', error }));
    await browser.load(url);
    this.o.log.info('page loaded', { display: display.name, sink: sink.name });
    if (!source.awaitStartSignal) this.start();
    return { type: 'screen', display: display.name, pulseDevice: sink.monitor };
  }

  /** Also while prepare() runs: what it has started (or is starting) is stopped; a page still loading fails. */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    const [browser, display, sink] = await Promise.allSettled([this.browser, this.display, this.sink]);
    if (browser.status === 'fulfilled') await browser.value?.close();
    if (display.status === 'fulfilled') await display.value?.close();
    if (sink.status === 'fulfilled' && sink.value) await unloadModule(sink.value.module);
  }
}
