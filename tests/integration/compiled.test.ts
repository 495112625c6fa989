// The production runtime (issue 11): bin/egress runs the compiled JavaScript in dist/ (npm run build)
// on Node >= 22 with no tsx loader, and a node run that way serves a real job: a short audio track
// egress through the rig's livekit-server + Redis, its handler forked from dist/ as well.
import '../rig/quiet-rtc.ts';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DirectFileOutput, EgressStatus, type EgressInfo } from '@livekit/protocol';
import { probe } from '../rig/probe.ts';
import { startPublisher } from '../rig/publisher.ts';
import { egressSuite } from '../support/suite.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EGRESS_BIN = path.join(ROOT, 'bin/egress');
const RECORD_MS = 3_000;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'egress-compiled-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

// What is under test is a build of the current sources (incremental: a no-op after setup.sh's).
const PATH = `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`;
const build = spawnSync(path.join(ROOT, 'bin/build'), { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PATH } });
if (build.status !== 0) throw new Error(`bin/build failed:\n${build.stdout}${build.stderr}`);

const nodeMajor = (exe: string) => Number(/^v(\d+)\./.exec(spawnSync(exe, ['--version'], { encoding: 'utf8' }).stdout)?.[1]);
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

t.test('bin/egress --help runs dist/ on Node >= 22, no tsx loaded', async (t) => {
  // A preload that records every module the process loads (module.registerHooks, in-thread).
  const probeFile = path.join(tmp, 'probe.mjs');
  const report = path.join(tmp, 'loaded.json');
  writeFileSync(probeFile, [
    "import { registerHooks } from 'node:module';",
    "import { writeFileSync } from 'node:fs';",
    'const loaded = [];',
    'registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });',
    "process.on('exit', () => writeFileSync(process.env.EGRESS_PROBE_REPORT, JSON.stringify({ version: process.version, execArgv: process.execArgv, main: process.argv[1], loaded })));",
    '',
  ].join('\n'));
  const r = spawnSync(EGRESS_BIN, ['--help'], {
    encoding: 'utf8',
    env: { ...process.env, EGRESS_RUNTIME: 'dist', NODE_OPTIONS: `--import=${pathToFileURL(probeFile).href}`, EGRESS_PROBE_REPORT: report },
  });
  t.equal(r.status, 0, `exit 0 ${r.stderr}`);
  t.match(r.stdout, /^Usage: egress <command>/, 'prints the usage');
  const seen = JSON.parse(readFileSync(report, 'utf8')) as { version: string; execArgv: string[]; main: string; loaded: string[] };
  t.equal(seen.main, path.join(ROOT, 'dist/supervisor/src/cli.js'), 'the entry point is dist/supervisor/src/cli.js');
  t.ok(Number(/^v(\d+)/.exec(seen.version)?.[1]) >= 22, `Node ${seen.version}`);
  t.same(seen.execArgv.filter((a) => !a.startsWith('--import=file:')), [], 'no node flags but the probe');
  const app = seen.loaded.filter((u) => u.startsWith(pathToFileURL(ROOT).href) && !u.includes('/node_modules/'));
  t.ok(app.length > 5 && app.every((u) => u.startsWith(pathToFileURL(path.join(ROOT, 'dist')).href + '/') && u.endsWith('.js')), `the app's ${app.length} modules are all dist/**/*.js`);
  t.same(seen.loaded.filter((u) => /\/node_modules\/(tsx|esbuild|get-tsconfig)\//.test(u) || u.endsWith('.ts')), [], 'no tsx, no .ts module');
});

// The suite's node is started by tests/support/egress-node.ts as `bin/egress serve`, with this
// process's environment: dist/ it is, whatever the sources' mtimes.
t.test('a compiled node serves a track egress', async (t) => {
  process.env.EGRESS_RUNTIME = 'dist';
  const suite = await egressSuite(t, {
    what: 'the compiled node serving a track egress',
    filteredBy: ['stream_only', 'segments_only', 'room_only', 'web_only', 'track_composite_only'],
  });
  if (!suite) return;
  const { deployment: d, node, client, getInfo } = suite;
  const pid = node.process.pid!;

  t.test('the node runs dist/supervisor/src/cli.js on Node >= 22', async (t) => {
    t.same(cmdline(pid).slice(1), [path.join(ROOT, 'dist/supervisor/src/cli.js'), 'serve'], 'no loader flags, the compiled entry point');
    t.ok(nodeMajor(readlinkSync(`/proc/${pid}/exe`)) >= 22, `node is ${readlinkSync(`/proc/${pid}/exe`)}`);
  });

  t.test('it records an audio track to OGG, the handler forked from dist/ with no tsx', async (t) => {
    const room = `compiled-${Date.now()}`;
    const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'compiled-pub', audio: true, video: false });
    t.teardown(() => pub.stop());
    const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'compiled/{track_id}' }), pub.audioTrackSid!);
    await waitFor('ACTIVE', async () => ((await getInfo(started.egressId))?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined), 20_000);

    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    const handler = children.map((c) => ({ pid: c, argv: cmdline(c) })).find((c) => c.argv.some((a) => a.includes('/handler/')));
    t.ok(handler, `a handler process among the node's children ${JSON.stringify(children)}`);
    t.same(handler?.argv.slice(1), [path.join(ROOT, 'dist/handler/src/main.js')], 'the handler runs dist/handler/src/main.js with no loader');
    t.equal(handler && readlinkSync(`/proc/${handler.pid}/exe`), readlinkSync(`/proc/${pid}/exe`), 'on the same node');

    await new Promise((r) => setTimeout(r, RECORD_MS));
    await client.stopEgress(started.egressId);
    const final: EgressInfo = await waitFor('ended', async () => {
      const info = await getInfo(started.egressId);
      return info && info.status >= EgressStatus.EGRESS_COMPLETE ? info : undefined;
    }, 30_000);
    t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `ends COMPLETE (error: ${final.error})`);
    const file = final.fileResults[0];
    t.ok(file && existsSync(file.location), `file at ${file?.location}`);
    if (file && existsSync(file.location)) {
      const info = await probe(file.location);
      t.equal(info.streams.find((s) => s.codecType === 'audio')?.codecName, 'opus', 'Opus audio');
      t.ok(info.duration > RECORD_MS / 1000 / 2, `duration ${info.duration.toFixed(2)} s`);
    }
  });
});
