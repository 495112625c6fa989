// The warm handler (handler_pool.idle, default 1): a node keeps a spare handler process started, with
// its media modules loaded; a job takes it and a new spare starts behind it; spares go with the node,
// whether it stops or is killed. Where the node serves web sources, a spare also starts a display, a
// null sink and Chromium (handler_pool.browser, default on): a web job takes them, any other job
// frees them, and nothing of them outlives the spare.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { DirectFileOutput, EgressStatus, EncodedFileOutput } from '@livekit/protocol';
import { freePort } from '../rig/ports.ts';
import { probe, videoChanges } from '../rig/probe.ts';
import { startPublisher } from '../rig/publisher.ts';
import { serveWebPages } from '../rig/web-page.ts';
import { isAlive, jobDetail } from '../support/debug-api.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { waitForStatus } from '../support/egress-run.ts';
import { egressSuite } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';
import { browserReady, checkFreed, egressSinks, hasSink, LOOPBACK_CHROME, spareBrowser, spares } from '../support/web-job.ts';


const debugPort = await freePort();
const suite = await egressSuite(t, {
  what: 'handler pool cases',
  filteredBy: ['stream_only', 'segments_only', 'room_only', 'web_only', 'track_composite_only'],
  // The reference's 4 cores a web job are more than this 2-core machine admits.
  node: { debug_handler_port: debugPort, cpu_cost: { web_cpu_cost: 0.5 }, ...LOOPBACK_CHROME },
});
if (suite) {
  const { deployment: d, node, client } = suite;

  t.test('a job starts on the spare handler, and a new spare takes its place', async (t) => {
    const nodePid = node.process.pid!;
    const [spare] = await waitFor('a spare handler', async () => (spares(nodePid).length === 1 ? spares(nodePid) : undefined), 20_000);
    t.ok(spare, `one spare handler waits (pid ${spare})`);
    const browser = await browserReady(spare!);
    t.pass(`it started Xvfb (${browser.xvfb}), Chromium (${browser.chromium}) and its sink egress_spare_${spare}`);
    const room = `pool-${Date.now()}`;
    const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'ann', audio: true, video: false });
    t.teardown(() => pub.stop());
    const t0 = Date.now();
    const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'pool/{track_id}' }), pub.audioTrackSid!);
    await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_ACTIVE, 'ACTIVE', 20_000);
    t.comment(`request → ACTIVE seen by polling: ${Date.now() - t0} ms`);
    const detail = await jobDetail(debugPort, started.egressId);
    t.equal(detail.processes.find((p) => p.name === 'handler')?.pid, spare, 'the job runs in the spare');
    // A track job has no use for the browser: it is closed at once, the sink with it.
    await waitFor('the browser to close', async () => {
      const b = await spareBrowser(spare!);
      return !b.sink && !isAlive(browser.xvfb!) && !isAlive(browser.chromium!) ? true : undefined;
    }, 15_000).catch(() => undefined);
    t.notOk(isAlive(browser.xvfb!) || isAlive(browser.chromium!), 'the track job closed the spare\'s Xvfb and Chromium');
    t.notOk(hasSink(await egressSinks(), [`egress_spare_${spare}`]), 'and unloaded its sink');
    const next = await waitFor('a new spare', async () => spares(nodePid).find((p) => p !== spare), 20_000);
    t.not(next, spare, `a new spare started behind it (pid ${next})`);
    await client.stopEgress(started.egressId);
    const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'ended', 30_000);
    t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${final.error})`);
    t.ok(Number(final.fileResults[0]?.size) > 0, 'with its file');
    t.notOk(isAlive(spare!), 'the used handler exited with its job');
  });

  t.test("a web job takes the spare's browser: same Chromium, same sink, a recording that plays", async (t) => {
    const pages = await serveWebPages();
    t.teardown(() => pages.stop());
    const nodePid = node.process.pid!;
    const spare = await waitFor('a spare handler', async () => spares(nodePid)[0], 30_000);
    const browser = await browserReady(spare);
    const started = await client.startWebEgress(pages.url({ id: 'pool', plain: true }), new EncodedFileOutput({ filepath: 'pool/web-{time}.mp4' }));
    await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_ACTIVE, 'ACTIVE', 30_000);
    const detail = await jobDetail(debugPort, started.egressId);
    t.equal(detail.processes.find((p) => p.name === 'handler')?.pid, spare, 'the job runs in the spare');
    t.equal(detail.processes.find((p) => p.name === 'chromium')?.pid, browser.chromium, "on the spare's Chromium");
    t.equal(detail.processes.find((p) => p.name === 'Xvfb')?.pid, browser.xvfb, 'in its display');
    t.ok(hasSink(await egressSinks(), [`egress_spare_${spare}`]), 'playing into its sink');
    await new Promise((r) => setTimeout(r, 5_000));
    await client.stopEgress(started.egressId);
    const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, 'ended', 30_000);
    t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${final.error})`);
    const file = final.fileResults[0]?.location;
    t.ok(file, 'with its file');
    if (file) {
      const p = await probe(file);
      t.same(p.streams.map((s) => s.codecName).sort(), ['aac', 'h264'], 'H.264 + AAC');
      t.ok(p.duration > 4, `as long as it recorded (${p.duration.toFixed(2)} s)`);
      const moves = await videoChanges(file);
      t.ok(moves.distinctFrames > moves.frames / 4, `the page's picture moves (${moves.distinctFrames}/${moves.frames} distinct)`);
    }
    await checkFreed(t, started.egressId, detail);
  });

  t.test('spares go with their node: when it stops, and when it is killed, and their browsers with them', async (t) => {
    for (const how of ['SIGINT', 'SIGKILL'] as const) {
      const other = await startEgressNode(d, { handler_pool: { idle: 2 } });
      t.teardown(() => other.stop());
      const pid = other.process.pid!;
      const two = await waitFor('two spares', async () => (spares(pid).length === 2 ? spares(pid) : undefined), 20_000);
      t.equal(two.length, 2, `handler_pool.idle: 2 keeps two spares (${how})`);
      const browsers = await Promise.all(two.map(browserReady));
      t.pass(`each started its browser (${how})`);
      await other.stop(how);
      await waitFor(`the spares gone after ${how}`, async () => (two.every((p) => !isAlive(p)) ? true : undefined), 10_000);
      t.pass(`no spare outlives its node (${how})`);
      const left = () => browsers.flatMap((b) => [b.xvfb!, b.chromium!, ...(b.parec ? [b.parec] : [])]).filter(isAlive);
      await waitFor(`their browsers gone after ${how}`, async () => (left().length ? undefined : true), 10_000).catch(() => undefined);
      t.same(left(), [], `nor its Xvfb or Chromium (${how})`);
      const sinks = await egressSinks();
      t.notOk(two.some((p) => hasSink(sinks, [`egress_spare_${p}`])), `nor its sink (${how})`);
    }
  });

  t.test('a node killed with its handlers all at once: the next node kills what their spares left running', async (t) => {
    const first = await startEgressNode(d, { handler_pool: { idle: 1 } });
    t.teardown(() => first.stop());
    const pid = first.process.pid!;
    const [spare] = await waitFor('a spare', async () => (spares(pid).length === 1 ? spares(pid) : undefined), 20_000);
    const browser = await browserReady(spare!);
    const parec = await waitFor("the spare's parec", async () => (await spareBrowser(spare!)).parec, 10_000);
    for (const p of [pid, spare!]) process.kill(p, 'SIGKILL');
    await waitFor('the node and its spare gone', async () => (isAlive(pid) || isAlive(spare!) ? undefined : true), 10_000);
    const detached = [browser.xvfb!, parec];
    t.ok(detached.some(isAlive), `with nobody left to kill them, the spare's detached processes run on (${detached.filter(isAlive).join(', ')})`);
    const next = await startEgressNode(d, { handler_pool: { idle: 1 }, tmp_dir: first.tmpDir });
    t.teardown(() => next.stop());
    await waitFor('what the dead spare left killed', async () => (detached.some(isAlive) ? undefined : true), 15_000);
    t.pass(`the next node killed its Xvfb (${browser.xvfb}) and parec (${parec})`);
    t.match(next.log(), /killing what a dead spare handler left running/, 'and said so');
  });
}
