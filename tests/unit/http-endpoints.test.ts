import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import t, { type Test } from 'tap';
import winston from 'winston';
import type { Config } from '@egress/shared/config/types.ts';
import { EgressError } from '@egress/shared/errors.ts';
import { DEFAULT_TEMPLATES_DIR } from '../../supervisor/src/http/templates.ts';
import { startHttpEndpoints, type HttpEndpointOptions } from '../../supervisor/src/http/server.ts';
import type { JobView, NodeCounters, NodeView } from '../../supervisor/src/service/node-view.ts';
import { freePort } from '../rig/ports.ts';

const log = winston.createLogger({ silent: true });

const SECRET = 'super-secret-api-secret';
const STARTED_NS = 1_700_000_000_123_000_000n;

function info(egressId: string, roomName: string, status: EgressStatus, startedAt = 0n): EgressInfo {
  return new EgressInfo({ egressId, roomName, status, startedAt });
}

/** A NodeView whose state each test sets directly. */
class FakeView implements NodeView {
  readonly nodeId = 'NE_test';
  draining = false;
  redisHealthy = true;
  canAccept = true;
  available = 3.5;
  load = 0.25;
  counters: NodeCounters = {
    claimsWon: 5,
    claimsLost: 2,
    handlerCrashes: 1,
    results: { completed: 3, failed: 1, 'track:aborted': 2 },
  };
  stopped: string[] = [];
  killed: string[] = [];
  stopError: unknown;
  dotError: unknown;
  jobList: JobView[] = [
    {
      egressId: 'EG_track1',
      requestType: 'track',
      request: { roomName: 'room1', trackId: 'TR_1', file: { filepath: 'out/x.ogg' } },
      info: info('EG_track1', 'room1', EgressStatus.EGRESS_ACTIVE, STARTED_NS),
      processes: [
        { pid: 100, pgid: 100, name: 'handler', commandLine: 'node handler.js' },
        { pid: 101, pgid: 101, name: 'gst-launch-1.0', commandLine: 'gst-launch-1.0 -e fakesrc ! fakesink' },
      ],
      commandLines: ['gst-launch-1.0 -e fakesrc ! fakesink'],
      cpu: 0.75,
      memoryBytes: 123456789,
    },
    {
      egressId: 'EG_rc2',
      requestType: 'room_composite',
      request: { roomName: 'room2', layout: 'grid' },
      info: info('EG_rc2', 'room2', EgressStatus.EGRESS_STARTING),
      processes: [],
      commandLines: [],
    },
  ];

  jobs(): JobView[] {
    return this.jobList;
  }
  job(egressId: string): JobView | undefined {
    return this.jobList.find((j) => j.egressId === egressId);
  }
  async stopJob(egressId: string): Promise<EgressInfo> {
    this.stopped.push(egressId);
    if (this.stopError !== undefined) throw this.stopError;
    const job = this.job(egressId)!;
    return info(egressId, job.info.roomName, EgressStatus.EGRESS_COMPLETE, job.info.startedAt);
  }
  killJob(egressId: string): void {
    this.killed.push(egressId);
  }
  async pipelineDot(egressId: string): Promise<string> {
    if (this.dotError !== undefined) throw this.dotError;
    return `digraph pipeline { label="${egressId}" }`;
  }
  availableCpu(): number {
    return this.available;
  }
  cpuLoad(): number {
    return this.load;
  }
  canAcceptWork(): boolean {
    return this.canAccept;
  }
}

interface Ports { health?: number; prometheus?: number; debug?: number; template?: number; debugBind?: string }

async function makeConfig(p: Ports): Promise<Config> {
  return {
    apiKey: 'key',
    apiSecret: SECRET,
    clusterId: 'cluster-a',
    healthPort: p.health ?? 0,
    prometheusPort: p.prometheus ?? 0,
    debugHandlerPort: p.debug ?? 0,
    templatePort: p.template ?? 0,
    ...(p.debugBind ? { debugBindAddress: p.debugBind } : {}),
  } as Config; // the endpoints read only ports, clusterId and debugBindAddress
}

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** A raw HTTP request: the path is sent as given (no URL normalization, unlike fetch). */
function http(port: number, method: string, urlPath: string, host = '127.0.0.1'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method, path: urlPath, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const json = (r: Reply): unknown => JSON.parse(r.body);

async function start(t: Test, view: NodeView, p: Ports, opts?: HttpEndpointOptions) {
  const endpoints = await startHttpEndpoints(await makeConfig(p), view, log, opts);
  t.teardown(() => endpoints.close());
  return endpoints;
}


t.test('health', async (t) => {
  const view = new FakeView();
  const { ports } = await start(t, view, { health: await freePort() });
  const port = ports.health!;

  for (const p of ['/', '/anything', '/status?x=1']) {
    const r = await http(port, 'GET', p);
    t.equal(r.status, 200, p);
    t.equal(r.headers['content-type'], 'application/json', p);
    t.same(json(r), {
      CpuLoad: 3.5,
      EG_track1: { Track: view.jobList[0]!.request },
      EG_rc2: { RoomComposite: view.jobList[1]!.request },
      ActiveJobs: 2,
      CanAccept: true,
    }, p);
  }
  t.same(Object.keys(json(await http(port, 'GET', '/')) as object)[0], 'CpuLoad', 'CpuLoad comes first, like Go');

  let r = await http(port, 'GET', '/healthz');
  t.equal(r.status, 200);
  t.equal(r.body, 'ok');

  view.redisHealthy = false;
  r = await http(port, 'GET', '/healthz');
  t.equal(r.status, 503);
  t.equal(r.body, 'redis unreachable');

  view.redisHealthy = true;
  view.draining = true;
  r = await http(port, 'GET', '/healthz');
  t.equal(r.status, 503);
  t.equal(r.body, 'draining');
  t.equal((json(await http(port, 'GET', '/')) as { CanAccept: boolean }).CanAccept, false, 'draining → CanAccept false');

  view.redisHealthy = false;
  t.equal((await http(port, 'GET', '/healthz')).body, 'redis unreachable, draining');

  view.redisHealthy = true;
  view.draining = false;
  t.equal((await http(port, 'GET', '/healthz')).status, 200, 'recovers');

  view.jobList = [];
  view.canAccept = false;
  t.same(json(await http(port, 'GET', '/')), { CpuLoad: 3.5, ActiveJobs: 0, CanAccept: false });
});

t.test('metrics', async (t) => {
  const view = new FakeView();
  const { ports } = await start(t, view, { prometheus: await freePort() });
  const port = ports.prometheus!;

  const r = await http(port, 'GET', '/metrics');
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = r.body;
  const has = (line: string) => t.ok(text.split('\n').includes(line), line);

  has('livekit_egress_available{node_id="NE_test",cluster_id="cluster-a"} 0');
  has('livekit_egress_can_accept_request{node_id="NE_test",cluster_id="cluster-a"} 1');
  has('livekit_egress_is_disabled{node_id="NE_test",cluster_id="cluster-a"} 0');
  has('livekit_node_cpu_load{node_type="EGRESS",node_id="NE_test",cluster_id="cluster-a"} 0.25');
  has('livekit_egress_requests{type="track",node_id="NE_test",cluster_id="cluster-a"} 1');
  has('livekit_egress_requests{type="room_composite",node_id="NE_test",cluster_id="cluster-a"} 1');
  has('livekit_egress_requests{type="web",node_id="NE_test",cluster_id="cluster-a"} 0');
  has('livekit_egress_handler_results_total{result="completed",node_id="NE_test",cluster_id="cluster-a"} 3');
  has('livekit_egress_handler_results_total{result="failed",node_id="NE_test",cluster_id="cluster-a"} 1');
  has('livekit_egress_handler_results_total{type="track",result="aborted",node_id="NE_test",cluster_id="cluster-a"} 2');
  has('livekit_egress_job_cpu_cores{egress_id="EG_track1",type="track",node_id="NE_test",cluster_id="cluster-a"} 0.75');
  has('livekit_egress_job_memory_bytes{egress_id="EG_track1",type="track",node_id="NE_test",cluster_id="cluster-a"} 123456789');
  t.notMatch(text, /job_cpu_cores\{egress_id="EG_rc2"/, 'no cpu series until measured');
  has('livekit_egress_claims_total{outcome="won",node_id="NE_test",cluster_id="cluster-a"} 5');
  has('livekit_egress_claims_total{outcome="lost",node_id="NE_test",cluster_id="cluster-a"} 2');
  has('livekit_egress_handler_crashes_total{node_id="NE_test",cluster_id="cluster-a"} 1');
  t.match(text, /^# TYPE livekit_egress_handler_results_total counter$/m);
  t.match(text, /^# TYPE livekit_egress_requests gauge$/m);
  t.match(text, /^process_cpu_user_seconds_total\{node_id="NE_test",cluster_id="cluster-a"\} /m, 'default process metrics');
  t.match(text, /^nodejs_heap_size_total_bytes/m);

  // Scrape-time values: the view changing shows on the next scrape, finished jobs' series vanish.
  view.jobList = [];
  view.draining = true;
  view.counters.claimsWon = 6;
  const again = (await http(port, 'GET', '/anything-at-all')).body;
  t.ok(again.includes('livekit_egress_available{node_id="NE_test",cluster_id="cluster-a"} 1'));
  t.ok(again.includes('livekit_egress_is_disabled{node_id="NE_test",cluster_id="cluster-a"} 1'));
  t.ok(again.includes('livekit_egress_can_accept_request{node_id="NE_test",cluster_id="cluster-a"} 0'), 'draining → cannot accept');
  t.ok(again.includes('livekit_egress_requests{type="track",node_id="NE_test",cluster_id="cluster-a"} 0'));
  t.ok(again.includes('livekit_egress_claims_total{outcome="won",node_id="NE_test",cluster_id="cluster-a"} 6'));
  t.notMatch(again, /egress_id="EG_track1"/, 'per-job series dropped');
});

t.test('debug', async (t) => {
  const view = new FakeView();
  const { ports } = await start(t, view, { debug: await freePort() });
  const port = ports.debug!;

  let r = await http(port, 'GET', '/jobs');
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'application/json');
  t.same(json(r), [
    {
      egressId: 'EG_track1', requestType: 'track', status: 'EGRESS_ACTIVE', startedAt: '2023-11-14T22:13:20.123Z',
      pids: [100, 101], cpu: 0.75, memoryBytes: 123456789,
    },
    { egressId: 'EG_rc2', requestType: 'room_composite', status: 'EGRESS_STARTING', startedAt: null, pids: [], cpu: null, memoryBytes: null },
  ]);
  t.equal((await http(port, 'GET', '/jobs/')).status, 200, 'trailing slash');

  r = await http(port, 'GET', '/jobs/EG_track1');
  t.equal(r.status, 200);
  const detail = json(r) as Record<string, unknown>;
  t.same(detail, {
    egressId: 'EG_track1',
    requestType: 'track',
    status: 'EGRESS_ACTIVE',
    request: view.jobList[0]!.request,
    info: view.jobList[0]!.info.toJson(),
    processes: view.jobList[0]!.processes,
    commandLines: ['gst-launch-1.0 -e fakesrc ! fakesink'],
    cpu: 0.75,
    memoryBytes: 123456789,
  });
  t.match(detail.info, { egressId: 'EG_track1', status: 'EGRESS_ACTIVE', startedAt: String(STARTED_NS) });
  t.notOk(r.body.includes(SECRET), 'no credentials');

  r = await http(port, 'GET', '/jobs/EG_nope');
  t.equal(r.status, 404);
  t.same(json(r), { error: 'egress not found' });
  for (const p of ['/jobs/EG_nope/dot', '/jobs/EG_nope/stop', '/jobs/EG_nope/kill']) {
    const method = p.endsWith('dot') ? 'GET' : 'POST';
    const reply = await http(port, method, p);
    t.equal(reply.status, 404, p);
    t.same(json(reply), { error: 'egress not found' }, p);
  }
  t.same(view.stopped, [], 'unknown job never reaches the view');
  t.same(view.killed, []);

  // Pipeline graphs.
  r = await http(port, 'GET', '/jobs/EG_track1/dot');
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'text/vnd.graphviz');
  t.equal(r.body, 'digraph pipeline { label="EG_track1" }');
  r = await http(port, 'GET', '/gst_pipeline/EG_track1');
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'text/vnd.graphviz');
  t.equal(r.body, 'digraph pipeline { label="EG_track1" }');
  r = await http(port, 'GET', '/gst_pipeline');
  t.equal(r.status, 404);
  t.equal(r.body, 'malformed url\n');
  r = await http(port, 'GET', '/gst_pipeline/EG_nope');
  t.equal(r.status, 404);
  t.equal(r.body, 'egress not found\n');

  view.dotError = new EgressError('unavailable', 'handler not responding');
  r = await http(port, 'GET', '/jobs/EG_track1/dot');
  t.equal(r.status, 503, 'EgressError → its HTTP status');
  t.same(json(r), { error: 'handler not responding' });
  t.equal((await http(port, 'GET', '/gst_pipeline/EG_track1')).status, 503);
  view.dotError = new Error('boom');
  t.equal((await http(port, 'GET', '/jobs/EG_track1/dot')).status, 500, 'other errors → 500');
  view.dotError = undefined;

  // Stop and kill.
  r = await http(port, 'POST', '/jobs/EG_track1/stop');
  t.equal(r.status, 200);
  t.same(view.stopped, ['EG_track1']);
  t.match(json(r), { info: { egressId: 'EG_track1', status: 'EGRESS_COMPLETE' } });

  r = await http(port, 'POST', '/jobs/EG_rc2/kill');
  t.equal(r.status, 202);
  t.same(json(r), { killed: 'EG_rc2' });
  t.same(view.killed, ['EG_rc2']);

  view.stopError = Object.assign(new Error('timed out'), { code: 'deadline_exceeded' });
  r = await http(port, 'POST', '/jobs/EG_track1/stop');
  t.equal(r.status, 503, 'a psrpc .code maps to its HTTP status');
  t.same(json(r), { error: 'timed out' });
  view.stopError = undefined;

  // Methods and unknown routes.
  r = await http(port, 'GET', '/jobs/EG_track1/stop');
  t.equal(r.status, 405);
  t.equal(r.headers.allow, 'POST');
  t.equal((await http(port, 'GET', '/jobs/EG_track1/kill')).status, 405);
  r = await http(port, 'POST', '/jobs');
  t.equal(r.status, 405);
  t.equal(r.headers.allow, 'GET, HEAD');
  t.equal((await http(port, 'DELETE', '/jobs/EG_track1')).status, 405);
  t.equal((await http(port, 'POST', '/gst_pipeline/EG_track1')).status, 405);
  t.same(view.stopped, ['EG_track1', 'EG_track1'], 'GET on stop did nothing');
  t.same(view.killed, ['EG_rc2']);
  t.equal((await http(port, 'GET', '/')).status, 404);
  t.equal((await http(port, 'GET', '/jobs/EG_track1/other')).status, 404);
  t.equal((await http(port, 'GET', '/jobs/EG_track1/dot/more')).status, 404);
  t.equal((await http(port, 'GET', '/jobs/%E0%A4%A')).status, 400, 'bad escape');
});

/** A non-loopback IPv4 address of this machine, if any. */
function externalIPv4(): string | undefined {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

t.test('debug binds to 127.0.0.1 unless debug_bind_address says otherwise', async (t) => {
  const view = new FakeView();
  const { ports } = await start(t, view, { debug: await freePort() });
  t.equal((await http(ports.debug!, 'GET', '/jobs', '127.0.0.1')).status, 200);
  const external = externalIPv4();
  if (external) {
    await t.rejects(http(ports.debug!, 'GET', '/jobs', external), { code: 'ECONNREFUSED' }, `not on ${external}`);
  }

  if (process.platform === 'linux') {
    // All of 127/8 is loopback on Linux: binding 127.0.0.2 proves the key is honoured.
    const other = await start(t, view, { debug: await freePort(), debugBind: '127.0.0.2' });
    t.equal((await http(other.ports.debug!, 'GET', '/jobs', '127.0.0.2')).status, 200);
    await t.rejects(http(other.ports.debug!, 'GET', '/jobs', '127.0.0.1'), { code: 'ECONNREFUSED' });
  }
});

t.test('templates: placeholder until the build exists', async (t) => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'egress-tpl-')), 'missing');
  t.teardown(() => rmSync(path.dirname(dir), { recursive: true, force: true }));
  const { ports } = await start(t, new FakeView(), { template: await freePort() }, { templatesDir: dir });
  const r = await http(ports.template!, 'GET', '/');
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  t.match(r.body, /web-source feature/);
  t.equal((await http(ports.template!, 'GET', '/app.js')).status, 404);
  t.equal((await http(ports.template!, 'GET', '/../package.json')).status, 404);
});

t.test('templates: static files', async (t) => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'egress-tpl-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const dir = path.join(base, 'dist');
  mkdirSync(path.join(dir, 'sub'), { recursive: true });
  const files: Record<string, [string, string]> = {
    'index.html': ['<html>root</html>', 'text/html; charset=utf-8'],
    'app.js': ['console.log(1)', 'text/javascript; charset=utf-8'],
    'style.css': ['body{}', 'text/css; charset=utf-8'],
    'data.json': ['{"a":1}', 'application/json'],
    'logo.svg': ['<svg/>', 'image/svg+xml'],
    'img.png': ['\x89PNG', 'image/png'],
    'font.woff2': ['wOF2', 'font/woff2'],
    'blob.bin': ['xx', 'application/octet-stream'],
    'sub/index.html': ['<html>sub</html>', 'text/html; charset=utf-8'],
  };
  for (const [name, [body]] of Object.entries(files)) writeFileSync(path.join(dir, name), body);
  writeFileSync(path.join(base, 'secret.txt'), 'outside');
  symlinkSync(path.join(base, 'secret.txt'), path.join(dir, 'link.txt'));

  const { ports } = await start(t, new FakeView(), { template: await freePort() }, { templatesDir: dir });
  const port = ports.template!;
  for (const [name, [body, type]] of Object.entries(files)) {
    const r = await http(port, 'GET', `/${name}`);
    t.equal(r.status, 200, name);
    t.equal(r.headers['content-type'], type, name);
    if (!name.endsWith('.png')) t.equal(r.body, body, name);
  }
  t.equal((await http(port, 'GET', '/')).body, '<html>root</html>');
  t.equal((await http(port, 'GET', '/sub/')).body, '<html>sub</html>');
  t.equal((await http(port, 'GET', '/app.js?v=3')).status, 200, 'query ignored');
  const head = await http(port, 'HEAD', '/app.js');
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], String('console.log(1)'.length));
  t.equal(head.body, '');
  t.equal((await http(port, 'POST', '/app.js')).status, 405);
  t.equal((await http(port, 'GET', '/nope.js')).status, 404);

  for (const evil of [
    '/../package.json', '/../secret.txt', '/%2e%2e/secret.txt', '/sub/../../secret.txt', '/..%2fsecret.txt',
    '/%2e%2e%2fsecret.txt', '/..\\secret.txt', '/%5c..%5csecret.txt', '/app.js%00.html', '/link.txt',
  ]) {
    const r = await http(port, 'GET', evil);
    t.ok(r.status === 400 || r.status === 404, `${evil} → ${r.status}`);
    t.notOk(r.body.includes('outside'), `${evil} leaks nothing`);
  }
});

t.test('templates: default directory is <repo>/templates/dist', async (t) => {
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  t.equal(path.resolve(DEFAULT_TEMPLATES_DIR), path.join(repo, 'templates', 'dist'));
});

t.test('start: ports, all four, off when 0, close frees them', async (t) => {
  const view = new FakeView();
  const p = { health: await freePort(), prometheus: await freePort(), debug: await freePort(), template: await freePort() };
  const endpoints = await startHttpEndpoints(await makeConfig(p), view, log);
  t.same(endpoints.ports, { health: p.health, prometheus: p.prometheus, debug: p.debug, template: p.template });
  t.equal((await http(p.health, 'GET', '/healthz')).status, 200);
  t.equal((await http(p.prometheus, 'GET', '/')).status, 200);
  t.equal((await http(p.debug, 'GET', '/jobs')).status, 200);
  t.equal((await http(p.template, 'GET', '/')).status, 200);
  await endpoints.close();
  await t.rejects(http(p.health, 'GET', '/healthz'), { code: 'ECONNREFUSED' });
  await endpoints.close(); // idempotent

  const none = await startHttpEndpoints(await makeConfig({}), view, log);
  t.same(none.ports, {});
  await none.close();

  const some = await start(t, view, { prometheus: await freePort() });
  t.same(Object.keys(some.ports), ['prometheus']);
});

t.test('start: a port in use fails naming the config key, and closes what started', async (t) => {
  const blocker = createServer();
  const busy = await freePort();
  await new Promise<void>((resolve) => blocker.listen(busy, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

  const health = await freePort();
  await t.rejects(
    startHttpEndpoints(await makeConfig({ health, prometheus: busy }), new FakeView(), log),
    { message: `prometheus_port ${busy} is in use` },
  );
  // health started first and must have been closed again.
  await t.rejects(http(health, 'GET', '/healthz'), { code: 'ECONNREFUSED' });

  await t.rejects(startHttpEndpoints(await makeConfig({ health: busy }), new FakeView(), log), {
    message: `health_port ${busy} is in use`,
  });
  await t.rejects(startHttpEndpoints(await makeConfig({ template: busy }), new FakeView(), log), {
    message: `template_port ${busy} is in use`,
  });

  const shared = await freePort();
  await t.rejects(startHttpEndpoints(await makeConfig({ health: shared, debug: shared }), new FakeView(), log), {
    message: `debug_handler_port ${shared} is in use (also health_port)`,
  });
});
