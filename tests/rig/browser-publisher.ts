// A browser publisher: Debian's Chromium (headless, through playwright-core) running livekit-client
// in a small local page, publishing its fake camera and microphone, which loop the rig's marker
// media (tests/rig/marker-media.ts) from a y4m and a wav. The way most users publish, and a
// different WebRTC stack from rtc-node's, so interop bugs show up here.
//
// Everything stays on 127.0.0.1: the page is served from 127.0.0.1, and Chromium's WebRTC binds a
// wildcard socket whose candidates the page rewrites to 127.0.0.1 (tests/rig/browser/loopback.js).
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { markerFiles } from './marker-media.ts';
import { mintToken } from './publisher.ts';

export const CHROMIUM_BIN = '/usr/bin/chromium';
const MEDIA_CACHE_DIR = fileURLToPath(new URL('../../.cache/media', import.meta.url));
const PAGE_DIR = fileURLToPath(new URL('./browser', import.meta.url));
const LIVEKIT_CLIENT_UMD = fileURLToPath(new URL('../../node_modules/livekit-client/dist/livekit-client.umd.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;

export interface BrowserPublisherOptions {
  wsUrl: string;
  apiKey: string;
  apiSecret: string;
  room: string;
  identity: string;
  /** default true */
  audio?: boolean;
  /** default 'vp8' */
  video?: false | 'vp8' | 'h264';
  /** Size of the fake camera's pictures (the y4m); default 640x360. */
  width?: number;
  height?: number;
  fps?: number;
  /** Publish the fake camera as a screen share (and the microphone as screen share audio). */
  screenShare?: boolean;
  /** Length of the looped media files; default 10. */
  seconds?: number;
  /** Chromium's and the page's console on stderr. */
  verbose?: boolean;
}

export interface BrowserPublisher {
  audioTrackSid?: string;
  videoTrackSid?: string;
  /**
   * Wall-clock ms (Date.now() scale) of a media-time-0 instant: flashes start at publishedAt + k*1000.
   * Measured from the flash onsets the page sees on its own camera track (±1 frame, ~35 ms); the
   * fake microphone loops the wav on its own clock, so beeps are only roughly aligned (see report).
   */
  publishedAt: number;
  page: Page;
  /** The video size the camera delivers now (after switchResolution, the new one). */
  size(): Promise<{ width: number; height: number } | undefined>;
  /** Rescales the camera track mid-stream (applyConstraints, crop-and-scale); resolves with the new size. */
  switchResolution(width: number, height: number): Promise<{ width: number; height: number }>;
  /** The nominated ICE pairs and outbound RTP stats of the page's peer connections. */
  stats(): Promise<unknown>;
  /** Video codecs this Chromium can send. */
  codecs(): Promise<string[]>;
  unpublish(kind: 'audio' | 'video'): Promise<void>;
  stop(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript' };

async function servePage(): Promise<Server> {
  const files: Record<string, string> = {
    '/': path.join(PAGE_DIR, 'page.html'),
    '/loopback.js': path.join(PAGE_DIR, 'loopback.js'),
    '/publisher.js': path.join(PAGE_DIR, 'publisher.js'),
    '/livekit-client.umd.js': LIVEKIT_CLIENT_UMD,
  };
  const server = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://127.0.0.1').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

// playwright kills the browsers it launched when this process exits

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function startBrowserPublisher(opts: BrowserPublisherOptions): Promise<BrowserPublisher> {
  const withAudio = opts.audio ?? true;
  const video = opts.video ?? 'vp8';
  if (!withAudio && !video) throw new Error('browser publisher: nothing to publish');
  const width = opts.width ?? 640;
  const height = opts.height ?? 360;
  const fps = opts.fps ?? 30;
  const files = await markerFiles(MEDIA_CACHE_DIR, { seconds: opts.seconds ?? 10, width, height, fps });
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'egress-chromium-'));
  const server = await servePage();
  const pageUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  let browser: BrowserContext | undefined;
  const cleanup = async () => {
    if (browser) {
      await browser.close().catch(() => {});
    }
    await new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    await rm(userDataDir, { recursive: true, force: true });
  };

  try {
    // a persistent context is how playwright takes a fresh --user-data-dir
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_BIN,
      headless: true,
      timeout: START_TIMEOUT_MS,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-features=WebRtcHideLocalIpsWithMdns',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        `--use-file-for-fake-video-capture=${files.y4m}`,
        `--use-file-for-fake-audio-capture=${files.wav}`,
        // One wildcard-bound UDP socket instead of one per interface; see tests/rig/browser/loopback.js.
        '--force-webrtc-ip-handling-policy',
        '--webrtc-ip-handling-policy=default_public_interface_only',
      ],
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    if (opts.verbose) {
      page.on('console', (m) => console.error(`browser-publisher[${opts.identity}] ${m.type()}: ${m.text()}`));
    }
    page.on('pageerror', (e) => console.error(`browser-publisher[${opts.identity}] page error:`, e));
    await page.goto(pageUrl);
    await page.waitForFunction(() => 'rig' in window && 'LivekitClient' in window);

    if (video === 'h264') {
      const codecs = await page.evaluate(() => (window as unknown as { rig: { codecs(): string[] } }).rig.codecs());
      if (!codecs.some((c) => c.startsWith('video/H264'))) {
        throw new Error(`browser publisher: this Chromium cannot encode H.264 (video codecs: ${codecs.join(', ')})`);
      }
    }
    const token = await mintToken(opts);
    const sids = await page.evaluate(
      (o) => (window as unknown as { rig: { start(o: unknown): Promise<{ audioTrackSid?: string; videoTrackSid?: string }> } }).rig.start(o),
      { url: opts.wsUrl, token, audio: withAudio, video, screenShare: opts.screenShare ?? false, width, height, fps },
    );

    type Timing = { flashes: number[]; firstFrameAt?: number; openedAt: number; frameFormat?: string };
    const timing = () => page.evaluate(() => (window as unknown as { rig: { timing(): Timing } }).rig.timing());
    let publishedAt: number;
    if (video) {
      // wait for two flash onsets (≤ 2 s more) to average the frame-arrival jitter
      let t = await timing();
      for (let i = 0; i < 25 && t.flashes.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        t = await timing();
      }
      if (!t.flashes.length) throw new Error(`browser publisher: no flash seen on the camera track (frame format ${t.frameFormat})`);
      // every onset is a media-time-0 instant modulo 1 s: bring them to the first one and take the median
      const first = t.flashes[0]!;
      publishedAt = median(t.flashes.map((f) => first + ((((f - first + 500) % 1000) + 1000) % 1000) - 500));
    } else {
      publishedAt = (await timing()).openedAt;
    }

    const rig = <T,>(fn: string, ...args: unknown[]) =>
      page.evaluate(([f, a]) => (window as unknown as { rig: Record<string, (...x: unknown[]) => unknown> }).rig[f as string]!(...(a as unknown[])), [fn, args] as const) as Promise<T>;

    let stopping: Promise<void> | undefined;
    return {
      ...sids,
      publishedAt,
      page,
      size: () => rig('size'),
      switchResolution: (w, h) => rig('switchResolution', w, h),
      stats: () => rig('stats'),
      codecs: () => rig('codecs'),
      unpublish: (kind) => rig('unpublish', kind),
      stop: () => {
        stopping ??= (async () => {
          await rig('stop').catch(() => {});
          await cleanup();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
