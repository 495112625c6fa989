// A web source (egress-behaviour §9.1): the job's own PulseAudio null sink and X display, Chromium
// showing the page in them, and the page's start and end signals. gst captures the display and
// the sink's monitor itself (pipeline/encode.ts); nothing goes through Node.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Config } from '@egress/shared/config/types.ts';
import { EgressError } from '@egress/shared/errors.ts';
import type { ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import type { CaptureInput } from '../../pipeline/encode.ts';
import type { CaptureSource } from '../source.ts';
import { hostKey, startPageHost, type PageHost } from './page-host.ts';
import { pageUrl, type WebSourceConfig } from './page-url.ts';
import { takeWarm } from './warm.ts';

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
  private host?: Promise<PageHost>;
  private closing?: Promise<void>;

  constructor(private readonly o: WebSourceOptions) {
    this.started = new Promise((r) => (this.start = r));
    this.ended = new Promise((r) => (this.end = r));
  }

  async prepare(): Promise<CaptureInput> {
    const { plan, source, config } = this.o;
    const t0 = performance.now();
    const screen = plan.video ? { width: plan.video.width, height: plan.video.height, depth: plan.video.depth } : AUDIO_ONLY_SCREEN;
    let warm = false;
    this.host = takeWarm(hostKey(config, screen)).then((spare) => {
      warm = spare !== undefined;
      return spare ?? startPageHost({ screen, config, sinkName: plan.egressId, userDataDir: path.join(this.o.scratch, 'chromium'), log: this.o.log, report: this.o.report });
    });
    const { sink, display, browser } = await this.host;
    const hostMs = Math.round(performance.now() - t0);
    const url = pageUrl(source, source.template ? await this.o.room() : undefined);
    if (this.closing) throw new EgressError('aborted', 'web source closed while starting');
    browser.onSignal((s) => {
      if (s === 'start') this.start();
      else this.end({ reason: 'Source closed' });
    });
    void browser.died.then((error) => this.end({ reason: 'Failure', error }));
    await browser.load(url, this.o.log);
    // What request → ACTIVE is made of: the host (warm: taken from the spare), then the page.
    this.o.log.info('page loaded', { display: display.name, sink: sink.name, warm, hostMs, loadMs: Math.round(performance.now() - t0) - hostMs });
    if (!source.awaitStartSignal) this.start();
    return { type: 'screen', display: display.name, pulseDevice: sink.monitor };
  }

  capturing(): Promise<void> {
    void this.host?.then((h) => h.recording());
    return Promise.resolve();
  }

  /** Also while prepare() runs: what it has started (or is starting) is stopped; a page still loading fails. */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    const host = await this.host?.catch(() => undefined);
    await host?.close();
  }
}
