// The default room-composite template (templates/, built into templates/dist) in Debian's Chromium,
// headless, against the rig's livekit-server: served by the supervisor's template server, opened as the
// hidden recorder participant an egress would be (identity = an egress id), with two rtc-node
// publishers sending the rig's marker picture. Layouts are checked on screenshots, region by region
// (tests/rig/layouts.ts).
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { RoomServiceClient } from 'livekit-server-sdk';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createLogger } from '../../shared/src/logging.ts';
import { DEFAULT_TEMPLATES_DIR, templatesHandler } from '../../supervisor/src/http/templates.ts';
import { recorderToken } from '../../handler/src/source/token.ts';
import { CHROMIUM_BIN } from '../rig/browser-publisher.ts';
import { GRID_2, layoutMismatches, LAYOUT_HEIGHT as HEIGHT, LAYOUT_WIDTH as WIDTH, region, SINGLE, SPEAKER_2, type Region } from '../rig/layouts.ts';
import { disposeRtc, startPublisher, type Publisher, type PublisherOptions } from '../rig/publisher.ts';
import { suiteDeployment } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const LOOPBACK_JS = fileURLToPath(new URL('../rig/browser/loopback.js', import.meta.url));
/** Set to a directory to keep every screenshot taken (to look at them). */
const SHOTS_DIR = process.env.EGRESS_TEST_SHOTS;

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** An id shaped like livekit-server's: EG_ and 12 base62 characters. */
const newEgressId = () => `EG_${Array.from({ length: 12 }, () => ID_CHARS[randomInt(ID_CHARS.length)]).join('')}`;

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });
if (['web_only', 'track_composite_only', 'track_only'].some((f) => d.flags[f as keyof typeof d.flags])) {
  t.pass('template cases filtered out by the deployment flags');
} else if (!existsSync(path.join(DEFAULT_TEMPLATES_DIR, 'index.html'))) {
  t.fail(`no template build in ${DEFAULT_TEMPLATES_DIR}: run npm run build (or npm run setup)`);
} else {
  await run();
}

async function run(): Promise<void> {
  t.teardown(disposeRtc);
  const rooms = new RoomServiceClient(d.httpUrl, d.apiKey, d.apiSecret);

  // the supervisor's template server, in this process
  const log = createLogger({ level: 'warn', json: false });
  const server = createServer(templatesHandler(log));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const browser = await chromium.launch({
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      // one wildcard-bound UDP socket, rewritten to 127.0.0.1 by loopback.js
      '--force-webrtc-ip-handling-policy',
      '--webrtc-ip-handling-policy=default_public_interface_only',
    ],
  });
  t.teardown(() => browser.close());
  const context: BrowserContext = await browser.newContext({ viewport: { width: WIDTH, height: HEIGHT } });
  await context.addInitScript({ path: LOOPBACK_JS });

  const room = `template-${Date.now()}`;
  const publisherOpts = (identity: string, extra: Partial<PublisherOptions> = {}): PublisherOptions => ({
    wsUrl: d.wsUrl,
    apiKey: d.apiKey,
    apiSecret: d.apiSecret,
    room,
    identity,
    width: 640,
    height: 360,
    fps: 15,
    ...extra,
  });
  const publishers: Publisher[] = [];
  t.teardown(() => Promise.all(publishers.map((p) => p.stop())));
  for (const identity of ['alice', 'bob']) publishers.push(await startPublisher(publisherOpts(identity)));

  let shots = 0;
  if (SHOTS_DIR) mkdirSync(SHOTS_DIR, { recursive: true });

  /**
   * Opens the template as a fresh recorder of `roomName` (identity = an egress id, the handler's token),
   * with the query the handler builds (§9.1 step 6); `false` leaves a parameter out.
   */
  const open = async (t: Test, query: { layout?: string; url?: string | false; token?: string | false }, roomName = room) => {
    const egressId = newEgressId();
    const token = query.token === false ? undefined : (query.token ?? (await recorderToken(d.apiKey, d.apiSecret, roomName, egressId)));
    const url = query.url === false ? undefined : (query.url ?? d.wsUrl);
    const params = Object.entries({ layout: query.layout, token, url }).filter((e): e is [string, string] => e[1] !== undefined);
    const page = await context.newPage();
    t.teardown(() => page.close());
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    t.teardown(() => {
      if (!t.passing()) t.comment(`page console:\n${logs.join('\n')}`);
    });
    const response = await page.goto(`${base}?${new URLSearchParams(params).toString()}`);
    t.equal(response?.status(), 200, 'the template server serves the page');
    const count = (line: string) => logs.filter((l) => l === line).length;
    const started = () => waitFor('START_RECORDING', async () => (count('START_RECORDING') > 0 ? true : undefined), 20_000);
    return { page, logs, egressId, count, started };
  };

  /** Luma of a screenshot, one byte a pixel. */
  const grey = async (page: Page): Promise<Buffer> => {
    const png = await page.screenshot({ type: 'png' });
    if (SHOTS_DIR) writeFileSync(path.join(SHOTS_DIR, `shot-${String(++shots).padStart(3, '0')}.png`), png);
    const r = await execa('ffmpeg', ['-v', 'error', '-f', 'png_pipe', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], { input: png, encoding: 'buffer' });
    if (r.stdout.length !== WIDTH * HEIGHT) throw new Error(`screenshot is ${r.stdout.length} bytes, not ${WIDTH}x${HEIGHT}`);
    return Buffer.from(r.stdout);
  };
  /** Screenshots until every region looks as expected; fails with the last one's medians. */
  const expectLayout = async (t: Test, page: Page, what: string, regions: Region[], light = false) => {
    let last = '';
    const ok = await waitFor(
      what,
      async () => {
        const wrong = layoutMismatches(await grey(page), regions, light);
        last = wrong.join('; ');
        return wrong.length === 0 ? true : undefined;
      },
      15_000,
      300,
    ).catch(() => false);
    t.ok(ok, `${what}${ok ? '' : ` (${last})`}`);
  };

  await t.test('grid: START_RECORDING once the tiles render, two tiles', async (t) => {
    const { page, logs, count, started } = await open(t, { layout: 'grid' });
    await started();
    t.equal(count('START_RECORDING'), 1, 'START_RECORDING logged once');
    t.ok(await page.evaluate(() => [...document.querySelectorAll('video')].some((v) => v.videoWidth > 0)), 'a tile had a picture by then');
    t.equal(await page.locator('video').count(), 2, 'two video elements');
    await expectLayout(t, page, 'grid: two tiles side by side', GRID_2);
    t.equal(await page.locator('div.error').count(), 0, 'no div.error');
    t.notOk(logs.some((l) => l.startsWith('pageerror')), 'no page error');
  });

  await t.test('speaker', async (t) => {
    const { page, started } = await open(t, { layout: 'speaker' });
    await started();
    await expectLayout(t, page, 'speaker: focus and a carousel tile', SPEAKER_2);
  });

  await t.test('single-speaker', async (t) => {
    const { page, started } = await open(t, { layout: 'single-speaker' });
    await started();
    await expectLayout(t, page, 'single-speaker: one picture, full frame', SINGLE);
    t.equal(await page.locator('video').count(), 1, 'one video element');
  });

  await t.test('-light: a white background', async (t) => {
    for (const [layout, regions] of [['grid-light', GRID_2], ['speaker-light', SPEAKER_2]] as const) {
      const { page, started } = await open(t, { layout });
      await started();
      await expectLayout(t, page, `${layout}: the tiles on white`, regions, true);
      await page.close();
    }
  });

  await t.test('a screen share takes the stage', async (t) => {
    const { page, started } = await open(t, { layout: 'grid' });
    await started();
    await expectLayout(t, page, 'grid of the two cameras', GRID_2);
    // a 4:3 share: on the 1020x720 focus it is 960x720 at x 30..990, full height, unlike a camera
    const share = await startPublisher(publisherOpts('carol-screen', { screenShare: true, audio: false, width: 480, height: 360 }));
    publishers.push(share);
    // the two cameras in the carousel column: 256x144 at y 214 and 362
    await expectLayout(t, page, 'the share on the focus, the cameras in the carousel', [
      region('share top', 200, 10, 620, 50, 'picture'),
      region('share bottom', 200, 660, 620, 50, 'picture'),
      region('left of the share', 2, 200, 20, 300, 'background'),
      region('carousel 1', 1060, 240, 180, 100, 'picture'),
      region('carousel 2', 1060, 390, 180, 100, 'picture'),
      region('carousel above', 1060, 40, 180, 150, 'background'),
      region('carousel below', 1060, 530, 180, 150, 'background'),
    ]);
    await share.stop();
    publishers.splice(publishers.indexOf(share), 1);
    await expectLayout(t, page, 'back to the grid once the share is gone', GRID_2);
  });

  await t.test('UpdateLayout: the recorder participant\'s metadata switches the layout live', async (t) => {
    const { page, egressId, count, started } = await open(t, { layout: 'grid' });
    await started();
    await expectLayout(t, page, 'grid first', GRID_2);
    const before = await rooms.getParticipant(room, egressId);
    t.ok(before.permission?.hidden, 'the recorder is hidden');
    // the page and the video elements get marks that a reload or a remount would lose
    await page.evaluate(() => {
      (window as unknown as { mark: number }).mark = 42;
      document.querySelectorAll('video').forEach((v) => v.setAttribute('data-mark', 'before'));
    });

    // what livekit-server does on UpdateLayout (egress-behaviour §3.6)
    await rooms.updateParticipant(room, egressId, { metadata: JSON.stringify({ layout: 'single-speaker' }) });
    await expectLayout(t, page, 'single-speaker after the update', SINGLE);
    t.equal(await page.locator('video[data-mark="before"]').count(), 1, 'the video left on the stage is the same element');
    await rooms.updateParticipant(room, egressId, { metadata: JSON.stringify({ layout: 'speaker-light' }) });
    await expectLayout(t, page, 'speaker-light after a second update', SPEAKER_2, true);

    t.equal(await page.evaluate(() => (window as unknown as { mark?: number }).mark), 42, 'same page: no reload');
    const after = await rooms.getParticipant(room, egressId);
    t.equal(after.sid, before.sid, 'same room connection: the recorder did not rejoin');
    t.equal(count('START_RECORDING'), 1, 'START_RECORDING once');
    t.equal(count('END_RECORDING'), 0, 'no END_RECORDING');
  });

  await t.test('missing url or token: div.error', async (t) => {
    for (const query of [{ token: false as const }, { url: false as const }]) {
      const { page } = await open(t, { layout: 'grid', ...query });
      await page.locator('div.error').waitFor({ timeout: 10_000 });
      t.equal(await page.locator('div.error').innerText(), 'missing required params url and token', `without ${query.token === false ? 'token' : 'url'}`);
      await page.close();
    }
  });

  await t.test('a room connection error: div.error', async (t) => {
    const { page, count } = await open(t, { layout: 'grid', token: 'not-a-token' });
    await page.locator('div.error').waitFor({ timeout: 20_000 });
    t.not((await page.locator('div.error').innerText()).trim(), '', `error text: ${await page.locator('div.error').innerText()}`);
    t.equal(count('START_RECORDING'), 0, 'no START_RECORDING');
  });

  await t.test('an empty room never starts; the first track does', async (t) => {
    const empty = `template-empty-${Date.now()}`;
    const { page, count, started } = await open(t, { layout: 'grid' }, empty);
    // past the 5 s fallback
    await new Promise((r) => setTimeout(r, 6_000));
    t.equal(count('START_RECORDING'), 0, 'no START_RECORDING after 6 s in an empty room');
    t.equal(await page.locator('div.error').count(), 0, 'and no error');
    const late = await startPublisher({ ...publisherOpts('late'), room: empty });
    t.teardown(() => late.stop());
    await started();
    t.pass('START_RECORDING once a publisher joins');
    await rooms.deleteRoom(empty);
  });

  // last: it closes the room the other cases share
  await t.test('the room is deleted: END_RECORDING', async (t) => {
    const { count, started } = await open(t, { layout: 'grid' });
    await started();
    t.equal(count('END_RECORDING'), 0, 'no END_RECORDING while the room is open');
    await rooms.deleteRoom(room);
    await waitFor('END_RECORDING', async () => (count('END_RECORDING') > 0 ? true : undefined), 15_000);
    t.equal(count('END_RECORDING'), 1, 'END_RECORDING logged once');
  });
}
