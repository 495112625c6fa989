// The `egress` CLI, run as the real bin/egress binary against a real livekit-server + Redis + egress
// node: start/list/stop/update-* through livekit-server's API, `--wait` progress, one-line errors
// with their exit codes, and `jobs` through the node's debug port.
import '../rig/quiet-rtc.ts';
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgressStatus, type EgressInfo } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { startPublisher, disposeRtc } from '../rig/publisher.ts';
import { freePort } from '../rig/ports.ts';
import { suiteDeployment } from '../support/suite.ts';
import { startEgressNode } from '../support/egress-node.ts';
import { waitFor } from '../support/wait.ts';

const EGRESS_BIN = fileURLToPath(new URL('../../bin/egress', import.meta.url));
const DEBUG_SOURCE = fileURLToPath(new URL('../../supervisor/src/http/debug.ts', import.meta.url));

interface CliRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const { deployment: d } = await suiteDeployment(t, { needsWebhooks: false });

if (d.flags.stream_only || d.flags.segments_only || d.flags.room_only || d.flags.web_only || d.flags.track_composite_only) {
  t.pass('the CLI cases record track egresses: filtered out by the deployment flags');
} else {
  const debugPort = await freePort();
  // Small CPU costs: on a small machine the node would not bid for the composite kinds at their
  // default costs, and livekit-server would answer `no response from servers` instead of the
  // node's own answer.
  const cheap = 0.1;
  const node = await startEgressNode(d, {
    debug_handler_port: debugPort,
    cpu_cost: {
      room_composite_cpu_cost: cheap,
      audio_room_composite_cpu_cost: cheap,
      sdk_audio_room_composite_cpu_cost: cheap,
      web_cpu_cost: cheap,
      audio_web_cpu_cost: cheap,
      participant_cpu_cost: cheap,
      track_composite_cpu_cost: cheap,
    },
  });
  const room = `cli-${Date.now()}`;
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'cli-pub', audio: true, video: false });
  t.teardown(async () => {
    await pub.stop();
    await node.stop();
    await disposeRtc();
  });
  const trackId = pub.audioTrackSid!;
  const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
  const getInfo = async (egressId: string): Promise<EgressInfo | undefined> => (await client.listEgress({ egressId }))[0];
  const waitStatus = (egressId: string, ok: (s: EgressStatus) => boolean, what: string, timeoutMs = 30_000) =>
    waitFor(`${egressId} ${what}`, async () => {
      const info = await getInfo(egressId);
      return info && ok(info.status) ? info : undefined;
    }, timeoutMs, 250);
  const ended = (s: EgressStatus) => s >= EgressStatus.EGRESS_COMPLETE;

  // Only what the CLI needs: the server and its keys, the node's debug port. Nothing inherited
  // from the developer's shell can point it elsewhere.
  const env: NodeJS.ProcessEnv = { ...process.env, LIVEKIT_URL: d.wsUrl, LIVEKIT_API_KEY: d.apiKey, LIVEKIT_API_SECRET: d.apiSecret, EGRESS_DEBUG_PORT: String(debugPort) };
  delete env.LIVEKIT_WS_URL;

  const spawnCli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): CliRun => {
    const child = spawn(EGRESS_BIN, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    return { child, stdout: () => out, stderr: () => err, exited };
  };
  const cli = async (args: string[], extraEnv: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<CliResult> => {
    const run = spawnCli(args, extraEnv);
    const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
    const { code } = await run.exited;
    clearTimeout(timer);
    return { code, stdout: run.stdout(), stderr: run.stderr() };
  };
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const lines = (s: string) => s.split('\n').filter((l) => l !== '');
  /** The CLI failed with exactly one `egress: …` line on stderr and the given exit code. */
  const failsWith = (t: Test, r: CliResult, code: number, pattern: RegExp, what: string) => {
    t.equal(r.code, code, `${what}: exit ${code}`);
    t.equal(lines(r.stderr).length, 1, `${what}: exactly one line on stderr`);
    t.match(r.stderr, pattern, `${what}: ${r.stderr.trim()}`);
    t.notMatch(r.stderr, /\bat .*\.(ts|js):\d+/, `${what}: no stack trace`);
  };
  const idOf = (stdout: string): string => {
    const m = /^egress_id\s+(EG_\w+)$/m.exec(stdout);
    if (!m) throw new Error(`no egress id in:\n${stdout}`);
    return m[1]!;
  };
  const startTrack = async (t: Test, dir: string): Promise<string> => {
    const r = await cli(['start', 'track', '--room', room, '--track', trackId, '--file', `${dir}/{track_id}`]);
    t.equal(r.code, 0, `start track exits 0 ${r.stderr}`);
    return idOf(r.stdout);
  };
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'egress-cli-'));

  let first = '';

  t.test('start track, then list shows it', async (t) => {
    const r = await cli(['start', 'track', '--room', room, '--track', trackId, '--file', 'cli/{track_id}']);
    t.equal(r.code, 0, `exit 0 ${r.stderr}`);
    t.equal(r.stderr, '', 'nothing on stderr');
    first = idOf(r.stdout);
    t.match(r.stdout, /^status\s+EGRESS_STARTING$/m, 'prints the status');
    t.match(r.stdout, /^type\s+track$/m);
    t.match(r.stdout, new RegExp(`^room\\s+${room}$`, 'm'));
    t.match(r.stdout, new RegExp(`^source\\s+${trackId}$`, 'm'));

    const list = await cli(['list']);
    t.equal(list.code, 0, 'list exits 0');
    const header = lines(list.stdout)[0]!;
    t.match(header, /^EGRESS ID\s+STATUS\s+TYPE\s+ROOM\s+SOURCE\s+STARTED\s+DURATION\s+ERROR$/, 'a table header');
    const row = lines(list.stdout).find((l) => l.startsWith(first));
    t.ok(row, 'list shows the egress');
    t.match(row, new RegExp(`^${first}\\s+EGRESS_(STARTING|ACTIVE)\\s+track\\s+${room}\\s+${trackId}`), 'one compact row');

    const json = await cli(['list', '--room', room, '--json']);
    t.equal(json.code, 0);
    const items = JSON.parse(json.stdout) as { egressId: string; roomName: string; track?: { trackId: string } }[];
    t.ok(Array.isArray(items) && items.some((i) => i.egressId === first && i.roomName === room && i.track?.trackId === trackId), 'list --json prints protobuf JSON');

    await waitStatus(first, (s) => s === EgressStatus.EGRESS_ACTIVE, 'ACTIVE');
    const active = await cli(['list', '--active', '--room', room]);
    t.match(active.stdout, new RegExp(`^${first}\\s+EGRESS_ACTIVE`, 'm'), 'list --active shows it ACTIVE');
    const other = await cli(['list', '--room', `${room}-nobody`]);
    t.equal(other.stdout.trim(), 'no egresses', 'an empty list says so');
  });

  t.test('update-stream on a track egress: the server error, one line', async (t) => {
    const r = await cli(['update-stream', first, '--add', 'rtmp://127.0.0.1:1935/live/cli']);
    failsWith(t, r, 1, /^egress: invalid_argument: UpdateStream called on non-streaming egress\n$/, 'update-stream');
    const usage = await cli(['update-stream', first]);
    failsWith(t, usage, 2, /^egress: update-stream: give --add <url> and\/or --remove <url>\n$/, 'update-stream without URLs');
  });

  t.test('update-layout: the server answer', async (t) => {
    const r = await cli(['update-layout', first, 'speaker']);
    // livekit-server sets the layout as metadata of the egress's room participant; a track egress
    // has none, so the server answers with an error.
    if (r.code === 0) {
      t.match(r.stdout, new RegExp(`^egress_id\\s+${first}$`, 'm'), 'prints the EgressInfo');
    } else {
      failsWith(t, r, 1, /^egress: \w+: .+\n$/, 'update-layout');
    }
  });

  t.test('a malformed --request file: one line, exit 2, the running egress undisturbed', async (t) => {
    const bad = path.join(tmp, 'request.json');
    writeFileSync(bad, `{\n  "roomName": "${room}",\n  "trackId": "${trackId}",,\n  "file": { "filepath": "x" }\n}\n`);
    const r = await cli(['start', 'track', '--request', bad]);
    const column = `  "trackId": "${trackId}",`.length + 1;
    failsWith(t, r, 2, new RegExp(`^egress: ${escape(bad)}: invalid JSON at line 3: .*\\(column ${column}\\)\\n$`), 'malformed JSON');

    const unknown = path.join(tmp, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ roomName: room, trackid: trackId }));
    failsWith(t, await cli(['start', 'track', '--request', unknown]), 2, /: unknown field "trackid" in TrackEgressRequest at line 1\n$/, 'unknown field');

    failsWith(t, await cli(['start', 'track', '--request', unknown, '--room', room]), 2, /^egress: --request cannot be combined with --room/, '--request with flags');
    failsWith(t, await cli(['start', 'track', '--room', room, '--file', 'x']), 2, /^egress: start track: missing --track <track-id>/, 'missing --track');
    failsWith(t, await cli(['start', 'track', '--rooom', room]), 2, /^egress: unknown option '--rooom'; \(Did you mean --room\?\)\n$/, 'unknown option');

    t.equal((await getInfo(first))?.status, EgressStatus.EGRESS_ACTIVE, 'the running egress is still ACTIVE');
    const list = await cli(['list', '--active']);
    t.match(list.stdout, new RegExp(`^${first}\\s+EGRESS_ACTIVE`, 'm'));
  });

  t.test('a --request file that is right starts the egress', async (t) => {
    const good = path.join(tmp, 'good.json');
    writeFileSync(good, JSON.stringify({ room_name: room, track_id: trackId, file: { filepath: 'cli-request/{track_id}' } }, null, 2));
    const r = await cli(['start', 'track', '--request', good, '--json']);
    t.equal(r.code, 0, `exit 0 ${r.stderr}`);
    const info = JSON.parse(r.stdout) as { egressId: string; status?: string; track?: { trackId: string } };
    t.match(info.egressId, /^EG_/);
    t.equal(info.track?.trackId, trackId, 'the request from the file reached the server');
    await waitStatus(info.egressId, (s) => s === EgressStatus.EGRESS_ACTIVE, 'ACTIVE');
    const stop = await cli(['stop', info.egressId, '--json']);
    t.equal(stop.code, 0);
    t.equal((JSON.parse(stop.stdout) as { status: string }).status, 'EGRESS_ENDING', 'stop --json prints protobuf JSON');
    await waitStatus(info.egressId, ended, 'ended');
  });

  t.test('the other kinds reach the server and show its answer', async (t) => {
    // Served here: they start, and the CLI prints the EgressInfo.
    const served: [string, string[]][] = [
      ['participant', ['--room', room, '--identity', 'cli-pub', '--file', 'cli/p.mp4']],
      ['track-composite', ['--room', room, '--audio-track', trackId, '--file', 'cli/tc.ogg']],
    ];
    // Web sources: the answer comes before Chromium starts; stopped at once, they end before a page loads.
    const web: [string, string[]][] = [
      ['room-composite', ['--room', room, '--file', 'cli/rc.mp4']],
      ['web', ['--url-to-record', 'http://127.0.0.1:9/page', '--file', 'cli/web.mp4']],
    ];
    await Promise.all([
      ...served.map(async ([kind, args]) => {
        const r = await cli(['start', kind, ...args, '--json']);
        t.equal(r.code, 0, `start ${kind}: exit 0 ${r.stderr}`);
        // Protobuf JSON leaves out defaults, and EGRESS_STARTING is 0.
        const info = JSON.parse(r.stdout) as { egressId: string; status?: string };
        t.match(info.egressId, /^EG_/, `start ${kind}: the EgressInfo`);
        t.equal(info.status ?? 'EGRESS_STARTING', 'EGRESS_STARTING');
        await waitStatus(info.egressId, (s) => s >= EgressStatus.EGRESS_ACTIVE, 'active');
        t.equal((await cli(['stop', info.egressId])).code, 0, `stop ${kind}`);
        await waitStatus(info.egressId, ended, 'ended');
      }),
      ...web.map(async ([kind, args]) => {
        const r = await cli(['start', kind, ...args, '--json']);
        t.equal(r.code, 0, `start ${kind}: exit 0 ${r.stderr}`);
        const info = JSON.parse(r.stdout) as { egressId: string; status?: string };
        t.equal(info.status ?? 'EGRESS_STARTING', 'EGRESS_STARTING', `start ${kind}: the EgressInfo`);
        t.equal((await cli(['stop', info.egressId])).code, 0, `stop ${kind}`);
        await waitStatus(info.egressId, ended, 'ended');
      }),
    ]);
  });

  t.test('stop prints the EgressInfo; the egress completes', async (t) => {
    const r = await cli(['stop', first]);
    t.equal(r.code, 0, `exit 0 ${r.stderr}`);
    t.match(r.stdout, new RegExp(`^egress_id\\s+${first}$`, 'm'));
    t.match(r.stdout, /^status\s+EGRESS_ENDING$/m);
    const final = await waitStatus(first, ended, 'ended');
    t.equal(final.status, EgressStatus.EGRESS_COMPLETE, `COMPLETE (${final.error})`);
    t.ok(existsSync(final.fileResults[0]!.location), 'the file exists');

    const again = await cli(['stop', first]);
    failsWith(t, again, 1, /^egress: failed_precondition: egress with status EGRESS_COMPLETE cannot be stopped\n$/, 'stopping an ended egress');
    const missing = await cli(['stop', 'EG_doesnotexist']);
    failsWith(t, missing, 1, /^egress: not_found: egress does not exist\n$/, 'stopping an unknown egress');

    const done = await cli(['list', '--room', room]);
    t.match(done.stdout, new RegExp(`^${first}\\s+EGRESS_COMPLETE\\s+track\\s+${room}\\s+${trackId}\\s+\\S+Z\\s+(\\d+\\.\\d+s|\\d+m\\d{2}s)$`, 'm'), 'list shows it COMPLETE with its duration (1m04s past a minute: it runs through the suite)');
  });

  t.test('start --wait: progress until COMPLETE, stopped by a second CLI', async (t) => {
    const run = spawnCli(['start', 'track', '--room', room, '--track', trackId, '--file', 'cli-wait/{track_id}', '--wait']);
    const id = await waitFor('the egress id', async () => (/^egress_id\s+(EG_\w+)$/m.exec(run.stdout())?.[1]), 30_000);
    await waitFor('a progress line', async () => (/ EGRESS_ACTIVE elapsed /.test(run.stdout()) ? true : undefined), 30_000);
    const stop = await cli(['stop', id]);
    t.equal(stop.code, 0, 'the second CLI stops it');
    const { code } = await run.exited;
    const out = run.stdout();
    t.equal(code, 0, `--wait exits 0 on COMPLETE ${run.stderr()}`);
    t.equal(run.stderr(), '', 'nothing on stderr');
    t.notMatch(out, /\r/, 'not a terminal: plain lines, no \\r');
    t.match(out, new RegExp(`^\\[\\s*[\\d.]+s\\] ${id} EGRESS_ACTIVE$`, 'm'), 'a line when it turns ACTIVE');
    t.match(out, new RegExp(`^\\[\\s*[\\d.]+s\\] ${id} EGRESS_ACTIVE elapsed \\d+\\.\\ds`, 'm'), 'progress lines with the elapsed time');
    // ENDING may last less than one poll: not asserted
    t.match(out, new RegExp(`^\\[\\s*[\\d.]+s\\] ${id} EGRESS_COMPLETE$`, 'm'), 'a line when it is COMPLETE');
    t.match(out, /^status\s+EGRESS_COMPLETE$/m, 'the final EgressInfo');
    t.match(out, /^file\s+cli-wait\/TR_\w+\.ogg\s+[\d.]+ (B|kB|MB)\s+[\d.]+s\s+\//m, 'with the file, its size and duration');
  });

  t.test('start --wait: Ctrl-C stops the egress and keeps waiting for the end', async (t) => {
    const run = spawnCli(['start', 'track', '--room', room, '--track', trackId, '--file', 'cli-int/{track_id}', '--wait']);
    const id = await waitFor('the egress id', async () => (/^egress_id\s+(EG_\w+)$/m.exec(run.stdout())?.[1]), 30_000);
    await waitFor('ACTIVE', async () => (new RegExp(`${id} EGRESS_ACTIVE$`, 'm').test(run.stdout()) ? true : undefined), 30_000);
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    const out = run.stdout();
    t.equal(code, 0, `exits 0 once COMPLETE ${run.stderr()}`);
    t.match(out, new RegExp(`^stopping ${id} `, 'm'), 'says it stops the egress');
    t.match(out, new RegExp(`^stop requested: ${id} is EGRESS_ENDING$`, 'm'));
    t.match(out, /^status\s+EGRESS_COMPLETE$/m);
    t.equal((await getInfo(id))?.status, EgressStatus.EGRESS_COMPLETE);
  });

  t.test('connection and auth failures are one line', async (t) => {
    const port = await freePort();
    failsWith(
      t,
      await cli(['list', '--url', `ws://127.0.0.1:${port}`]),
      1,
      new RegExp(`^egress: cannot reach livekit-server at http://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\n$`),
      'unreachable server',
    );
    const wrongSecret = await cli(['list', '--api-secret', 'not-the-secret-not-the-secret-0123']);
    failsWith(t, wrongSecret, 1, /^egress: unauthenticated: invalid token: .+\n$/, 'wrong secret');
    t.notMatch(wrongSecret.stderr, /eyJ/, 'the refused token is not echoed');
    failsWith(t, await cli(['list'], { LIVEKIT_URL: '', LIVEKIT_WS_URL: '' }), 2, /^egress: no livekit-server URL: give --url or set LIVEKIT_URL\n$/, 'no URL');
    const viaWsUrl = await cli(['list', '--room', room], { LIVEKIT_URL: '', LIVEKIT_WS_URL: d.wsUrl });
    t.equal(viaWsUrl.code, 0, 'LIVEKIT_WS_URL works too');
    failsWith(t, await cli(['start']), 2, /^egress: start: missing command: one of room-composite, web, participant, track-composite, track/, 'start without a kind');
  });

  t.test('--help: one line for what each verb does', async (t) => {
    const top = await cli(['--help']);
    t.equal(top.code, 0);
    for (const verb of ['serve', 'start', 'list', 'stop', 'update-stream', 'update-layout', 'jobs']) {
      t.match(top.stdout, new RegExp(`^  ${verb}\\b.*?  +\\w.+$`, 'm'), `${verb} is described`);
    }
    for (const args of [['start'], ['start', 'track'], ['start', 'room-composite'], ['start', 'web'], ['start', 'participant'], ['start', 'track-composite'], ['jobs'], ['jobs', 'kill'], ['update-stream'], ['serve']]) {
      const r = await cli([...args, '--help']);
      t.equal(r.code, 0, `${args.join(' ')} --help exits 0`);
      t.match(lines(r.stdout)[1], /^\w.+$/, `${args.join(' ')} --help: ${lines(r.stdout)[1]}`);
    }
  });

  // The debug server is built alongside the CLI: until `egress serve` serves it, these cases skip.
  const debugServed = await fetch(`http://127.0.0.1:${debugPort}/jobs`).then(
    (r) => r.ok,
    () => false,
  );
  const debugSkip = !existsSync(DEBUG_SOURCE) ? 'debug endpoint not built yet' : !debugServed ? 'debug endpoint not served by `egress serve` yet' : false;

  t.test('jobs list/inspect/stop/kill through the debug port', { skip: debugSkip }, async (t) => {
    const a = await startTrack(t, 'cli-jobs');
    await waitStatus(a, (s) => s === EgressStatus.EGRESS_ACTIVE, 'ACTIVE');

    const list = await cli(['jobs', 'list']);
    t.equal(list.code, 0, `jobs list exits 0 ${list.stderr}`);
    t.match(lines(list.stdout)[0], /^EGRESS ID\s+TYPE\s+STATUS\s+STARTED\s+PIDS\s+CPU\s+MEMORY$/);
    t.match(list.stdout, new RegExp(`^${a}\\s+track\\s+EGRESS_ACTIVE\\s+\\S+\\s+\\d+`, 'm'), 'the job with its pids');
    const listJson = await cli(['jobs', 'list', '--json', '--port', String(debugPort)], { EGRESS_DEBUG_PORT: '' });
    t.ok((JSON.parse(listJson.stdout) as { egressId: string }[]).some((j) => j.egressId === a), 'jobs list --json, --port');

    const inspect = await cli(['jobs', 'inspect', a, '--debug-url', `http://127.0.0.1:${debugPort}`]);
    t.equal(inspect.code, 0, `jobs inspect exits 0 ${inspect.stderr}`);
    t.match(inspect.stdout, new RegExp(`^egress_id\\s+${a}$`, 'm'));
    t.match(inspect.stdout, /^PID\s+PGID\s+NAME\s+COMMAND$/m, 'the processes');
    const detail = JSON.parse((await cli(['jobs', 'inspect', a, '--json'])).stdout) as { egressId: string; processes: unknown[] };
    t.equal(detail.egressId, a);
    t.ok(detail.processes.length > 0, 'inspect --json has the processes');

    failsWith(t, await cli(['jobs', 'inspect', 'EG_nope']), 1, /^egress: debug server: egress not found \(HTTP 404\)\n$/, 'inspect an unknown job');

    const stop = await cli(['jobs', 'stop', a]);
    t.equal(stop.code, 0, `jobs stop exits 0 ${stop.stderr}`);
    t.match(stop.stdout, new RegExp(`^egress_id\\s+${a}$`, 'm'), 'prints the EgressInfo');
    const stopped = await waitStatus(a, ended, 'ended');
    t.equal(stopped.status, EgressStatus.EGRESS_COMPLETE, `jobs stop: COMPLETE (${stopped.error})`);

    // Killed while a `start --wait` follows it: the wait ends FAILED, exit 1 with the error text.
    const waiting = spawnCli(['start', 'track', '--room', room, '--track', trackId, '--file', 'cli-kill/{track_id}', '--wait']);
    const b = await waitFor('the egress id', async () => /^egress_id\s+(EG_\w+)$/m.exec(waiting.stdout())?.[1], 30_000);
    await waitFor('ACTIVE', async () => (new RegExp(`${b} EGRESS_ACTIVE$`, 'm').test(waiting.stdout()) ? true : undefined), 30_000);
    const kill = await cli(['jobs', 'kill', b]);
    t.equal(kill.code, 0, `jobs kill exits 0 ${kill.stderr}`);
    t.equal(kill.stdout.trim(), `killed ${b}`);
    const { code } = await waiting.exited;
    const killed = await waitStatus(b, ended, 'ended');
    t.equal(killed.status, EgressStatus.EGRESS_FAILED, `killed: ${EgressStatus[killed.status]} (${killed.error})`);
    failsWith(t, { code, stdout: waiting.stdout(), stderr: waiting.stderr() }, 1, new RegExp(`^egress: ${b} ended EGRESS_FAILED: ${escape(killed.error)}\\n$`), 'start --wait on a killed egress');
    t.match(waiting.stdout(), /^status\s+EGRESS_FAILED$/m, 'the final EgressInfo is printed too');

    const freeDebug = await freePort();
    failsWith(
      t,
      await cli(['jobs', 'list', '--port', String(freeDebug)]),
      1,
      new RegExp(`^egress: cannot reach the egress node's debug server at http://127\\.0\\.0\\.1:${freeDebug}: connect ECONNREFUSED`),
      'unreachable debug port',
    );
  });

  t.test('jobs: usage errors', async (t) => {
    failsWith(t, await cli(['jobs', 'list'], { EGRESS_DEBUG_PORT: '' }), 2, /^egress: no debug port: give --debug-url, --port or set EGRESS_DEBUG_PORT/, 'no port');
    failsWith(t, await cli(['jobs', 'list', '--port', 'x']), 2, /^egress: invalid --port "x"/, 'bad port');
    failsWith(t, await cli(['jobs']), 2, /^egress: jobs: missing command: one of list, inspect, stop, kill/, 'jobs without a command');
  });
}
