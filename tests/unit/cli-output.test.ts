// The CLI's plumbing without a server: connection and debug-port resolution, error lines, the
// --wait loop (fake API, fake clock), the debug client against a loopback HTTP server, formatting.
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CommanderError } from 'commander';
import { EgressInfo, EgressStatus, FileInfo, TrackEgressRequest } from '@livekit/protocol';
import { ServerError } from 'livekit-server-sdk';
import { resolveConnection } from '../../supervisor/src/cli/connection.ts';
import { DebugClient, resolveDebugUrl } from '../../supervisor/src/cli/debug-client.ts';
import { CliError, describeServerError, finalError, fromServerCall, UsageError } from '../../supervisor/src/cli/errors.ts';
import { egressTable, formatBytes, formatDuration, formatInfo } from '../../supervisor/src/cli/format.ts';
import { run } from '../../supervisor/src/cli/program.ts';
import { EXIT_INTERRUPTED, waitForEgress } from '../../supervisor/src/cli/wait.ts';

t.test('connection: flags, then LIVEKIT_* variables; ws:// becomes http://', async (t) => {
  t.same(resolveConnection({}, { LIVEKIT_URL: 'ws://127.0.0.1:7880/', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's' }), { url: 'http://127.0.0.1:7880', apiKey: 'k', apiSecret: 's' });
  t.equal(resolveConnection({}, { LIVEKIT_WS_URL: 'wss://lk.example', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's' }).url, 'https://lk.example');
  t.same(resolveConnection({ url: 'http://127.0.0.1:1', apiKey: 'a', apiSecret: 'b' }, { LIVEKIT_URL: 'ws://x', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's' }), { url: 'http://127.0.0.1:1', apiKey: 'a', apiSecret: 'b' });
  t.throws(() => resolveConnection({}, {}), new UsageError('no livekit-server URL: give --url or set LIVEKIT_URL'));
  t.throws(() => resolveConnection({ url: 'ws://x' }, {}), new UsageError('no API key: give --api-key or set LIVEKIT_API_KEY'));
  t.throws(() => resolveConnection({ url: 'ws://x', apiKey: 'k' }, {}), new UsageError('no API secret: give --api-secret or set LIVEKIT_API_SECRET'));
  t.throws(() => resolveConnection({ url: 'ftp://x', apiKey: 'k', apiSecret: 's' }, {}), { exitCode: 2, message: /expected ws:\/\// });
});

t.test('debug URL: --debug-url, else 127.0.0.1 and --port or EGRESS_DEBUG_PORT', async (t) => {
  t.equal(resolveDebugUrl({ debugUrl: 'http://127.0.0.1:9/' }, {}), 'http://127.0.0.1:9');
  t.equal(resolveDebugUrl({ port: '7010' }, { EGRESS_DEBUG_PORT: '1' }), 'http://127.0.0.1:7010');
  t.equal(resolveDebugUrl({}, { EGRESS_DEBUG_PORT: '7011' }), 'http://127.0.0.1:7011');
  t.throws(() => resolveDebugUrl({}, {}), { exitCode: 2, message: /^no debug port/ });
  t.throws(() => resolveDebugUrl({ port: '70000' }, {}), { exitCode: 2, message: 'invalid --port "70000": expected a port number 1-65535' });
  t.throws(() => resolveDebugUrl({}, { EGRESS_DEBUG_PORT: 'x' }), { exitCode: 2, message: /^invalid EGRESS_DEBUG_PORT "x"/ });
});

t.test('errors: one line, the server code and message, exit codes', async (t) => {
  t.equal(describeServerError(new ServerError('Not Found', 'egress not found', 404, 'not_found')), 'not_found: egress not found');
  t.equal(describeServerError(new ServerError('Bad Request', 'twirp error unknown: UpdateStream called on non-streaming egress', 400, 'invalid_argument')), 'invalid_argument: UpdateStream called on non-streaming egress');
  t.equal(describeServerError(new ServerError('Unauthorized', 'invalid token: eyJa.eyJb.sig, error: token is expired', 401)), 'unauthenticated: invalid token: token is expired');
  t.equal(describeServerError(new ServerError('Not Found', '404 page not found', 404)), 'HTTP 404 Not Found: 404 page not found');

  const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
  t.same(finalError(fromServerCall(refused, 'http://127.0.0.1:9')), { line: 'egress: cannot reach livekit-server at http://127.0.0.1:9: connect ECONNREFUSED 127.0.0.1:9', exitCode: 1 });
  const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
  t.equal(fromServerCall(timeout, 'http://h').message, 'cannot reach livekit-server at http://h: timed out');

  t.same(finalError(new UsageError('bad\nthing')), { line: 'egress: bad; thing', exitCode: 2 });
  t.same(finalError(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'\n(Did you mean --y?)")), { line: "egress: unknown option '--x'; (Did you mean --y?)", exitCode: 2 });
  t.same(finalError(new Error('boom')), { line: 'egress: boom', exitCode: 1 });
});

t.test('run: usage errors are one line with exit 2, --help exits 0', async (t) => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: {
        stdout: { write: (s: string) => out.push(s) },
        stderr: { write: (s: string) => err.push(s) },
        env: {},
        readFile: () => '{',
      },
    };
  };
  let c = io();
  t.equal(await run(['node', 'egress', 'start', 'track', '--request', 'r.json'], c.io), 2);
  t.same(c.err, ['egress: r.json: invalid JSON at line 1: unexpected end of input, expected a property name in double quotes, got end of input (column 2)\n']);
  t.same(c.out, []);

  c = io();
  t.equal(await run(['node', 'egress', 'stop'], c.io), 2);
  t.same(c.err, ["egress: missing required argument 'egress-id'\n"]);

  c = io();
  t.equal(await run(['node', 'egress', 'list'], c.io), 2, 'no URL is a usage error');
  t.same(c.err, ['egress: no livekit-server URL: give --url or set LIVEKIT_URL\n']);

  c = io();
  t.equal(await run(['node', 'egress', 'start', 'web', '--help'], c.io), 0);
  t.match(c.out.join(''), /^Usage: egress start web \[options\]\n\nrecord or stream any web page\n/);
  t.same(c.err, []);
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** EgressInfo with a status and optional file result. */
const info = (status: EgressStatus, extra: Partial<EgressInfo> = {}) =>
  new EgressInfo({ egressId: 'EG_test', roomName: 'r', status, request: { case: 'track', value: new TrackEgressRequest({ trackId: 'TR_1' }) }, ...extra });

/** A fake API whose ListEgress answers follow `script`, one entry per poll (the last repeats). */
function fakeApi(script: (EgressInfo | Error)[]) {
  let polls = 0;
  const stops: string[] = [];
  return {
    stops,
    get polls() {
      return polls;
    },
    api: {
      list: async () => {
        const next = script[Math.min(polls++, script.length - 1)]!;
        if (next instanceof Error) throw next;
        return [next];
      },
      stop: async (id: string) => {
        stops.push(id);
        return info(EgressStatus.EGRESS_ENDING);
      },
    },
  };
}

/** A clock that moves 500 ms per poll, so progress lines (every 2 s) come every 4th poll. */
function clock() {
  let now = 0;
  return { now: () => now, tick: () => (now += 500) };
}

t.test('--wait: a line per status change, progress lines, the final info', async (t) => {
  const script = [
    info(EgressStatus.EGRESS_STARTING),
    ...Array.from({ length: 6 }, () => info(EgressStatus.EGRESS_ACTIVE)),
    info(EgressStatus.EGRESS_ENDING),
    info(EgressStatus.EGRESS_COMPLETE, { fileResults: [new FileInfo({ filename: 'a.ogg', size: 12_345n, duration: 3_500_000_000n })] }),
  ];
  const fake = fakeApi(script);
  const c = clock();
  let written = '';
  const final = await waitForEgress(fake.api, 'EG_test', {
    out: { write: (s: string) => (written += s) },
    pollMs: 0,
    now: () => c.tick(),
    onInterrupt: () => () => {},
  });
  t.equal(final.status, EgressStatus.EGRESS_COMPLETE);
  const lines = written.split('\n').filter(Boolean);
  t.match(lines, [/EG_test EGRESS_STARTING$/, /EG_test EGRESS_ACTIVE$/]);
  t.ok(lines.some((l) => / EG_test EGRESS_ACTIVE elapsed \d+\.\ds$/.test(l)), 'progress lines with the elapsed time');
  t.ok(lines.some((l) => /EG_test EGRESS_ENDING$/.test(l)));
  t.match(lines.at(-1), /EG_test EGRESS_COMPLETE$/);
  t.notMatch(written, /\r/, 'no \\r when not a terminal');
});

t.test('--wait on a terminal: progress rewrites one line', async (t) => {
  const fake = fakeApi([...Array.from({ length: 9 }, () => info(EgressStatus.EGRESS_ACTIVE, { fileResults: [new FileInfo({ size: 2_000n })] })), info(EgressStatus.EGRESS_FAILED, { error: 'pipeline broke' })]);
  const c = clock();
  let written = '';
  const final = await waitForEgress(fake.api, 'EG_test', { out: { write: (s: string) => (written += s), isTTY: true }, pollMs: 0, now: () => c.tick(), onInterrupt: () => () => {} });
  t.equal(final.error, 'pipeline broke');
  const CLEAR = '\r\x1b[K';
  t.match(written, new RegExp(`${escape(CLEAR)}\\[[ \\d.]+s\\] EG_test EGRESS_ACTIVE elapsed [\\d.]+s, file 2\\.0 kB`), 'progress drawn in place');
  t.ok(written.endsWith(`${CLEAR}${written.split(CLEAR).at(-1)}`) && /^\[[ \d.]+s\] EG_test EGRESS_FAILED: pipeline broke\n$/.test(written.split(CLEAR).at(-1)!), 'the progress line is cleared before the final status line');
});

t.test('--wait: an interrupt stops the egress and keeps waiting; a second gives up', async (t) => {
  let interrupt: () => void = () => {};
  const onInterrupt = (h: () => void) => {
    interrupt = h;
    return () => (interrupt = () => {});
  };
  const fake = fakeApi([info(EgressStatus.EGRESS_ACTIVE)]);
  const notes: string[] = [];
  const waiting = waitForEgress(fake.api, 'EG_test', { out: { write: () => {} }, note: (l) => notes.push(l), pollMs: 5, onInterrupt });
  await new Promise((r) => setTimeout(r, 30));
  interrupt();
  await new Promise((r) => setTimeout(r, 30));
  t.same(fake.stops, ['EG_test'], 'StopEgress sent once');
  t.same(notes, ['stopping EG_test (interrupt again to stop waiting)', 'stop requested: EG_test is EGRESS_ENDING']);
  interrupt();
  await t.rejects(waiting, { exitCode: EXIT_INTERRUPTED, message: 'interrupted: stopped waiting for EG_test (last seen EGRESS_ACTIVE)' });
});

t.test('--wait: transient poll failures are tolerated, lasting ones are not', async (t) => {
  const flaky = fakeApi([new CliError('cannot reach livekit-server at http://h: timed out'), info(EgressStatus.EGRESS_COMPLETE)]);
  t.equal((await waitForEgress(flaky.api, 'EG_test', { out: { write: () => {} }, pollMs: 0, onInterrupt: () => () => {} })).status, EgressStatus.EGRESS_COMPLETE);
  const down = fakeApi([new CliError('cannot reach livekit-server at http://h: timed out')]);
  await t.rejects(waitForEgress(down.api, 'EG_test', { out: { write: () => {} }, pollMs: 0, maxPollFailures: 3, onInterrupt: () => () => {} }), { message: /cannot reach/ });
  t.equal(down.polls, 3);
});

t.test('debug client against the debug API contract', async (t) => {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/jobs') return send(200, [{ egressId: 'EG_a', requestType: 'track', status: 'EGRESS_ACTIVE', startedAt: '2024-01-02T03:04:05.678Z', pids: [10, 11], cpu: 0.25, memoryBytes: 52_000_000 }]);
    if (req.url === '/jobs/EG_a') return send(200, { egressId: 'EG_a', requestType: 'track', status: 'EGRESS_ACTIVE', request: {}, info: {}, processes: [{ pid: 10, pgid: 10, name: 'node', commandLine: 'node handler' }], commandLines: ['gst-launch-1.0 a ! b'], cpu: null, memoryBytes: null });
    if (req.url === '/jobs/EG_a/stop') return send(200, { info: { egressId: 'EG_a', status: 'EGRESS_COMPLETE' } });
    if (req.url === '/jobs/EG_a/kill') return send(202, { killed: 'EG_a' });
    send(404, { error: 'egress not found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const client = new DebugClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);

  const jobs = await client.list();
  t.equal(jobs[0]?.egressId, 'EG_a');
  t.equal((await client.inspect('EG_a')).processes[0]?.name, 'node');
  t.same(await client.stop('EG_a'), { info: { egressId: 'EG_a', status: 'EGRESS_COMPLETE' } });
  t.same(await client.kill('EG_a'), { killed: 'EG_a' });
  await t.rejects(client.inspect('EG_b'), new CliError('debug server: egress not found (HTTP 404)'));
  t.same(requests, ['GET /jobs', 'GET /jobs/EG_a', 'POST /jobs/EG_a/stop', 'POST /jobs/EG_a/kill', 'GET /jobs/EG_b']);

  const { jobsTable, jobDetail } = await import('../../supervisor/src/cli/jobs.ts');
  t.match(jobsTable(jobs), /^EGRESS ID\s+TYPE\s+STATUS\s+STARTED\s+PIDS\s+CPU\s+MEMORY\nEG_a\s+track\s+EGRESS_ACTIVE\s+2024-01-02T03:04:05Z\s+10,11\s+0\.25\s+52\.0 MB$/);
  t.match(jobDetail(await client.inspect('EG_a')), /PID\s+PGID\s+NAME\s+COMMAND\n10\s+10\s+node\s+node handler\n\npipelines:\n {2}gst-launch-1\.0 a ! b$/);
});

t.test('formatting', async (t) => {
  t.equal(formatBytes(999), '999 B');
  t.equal(formatBytes(12_345n), '12.3 kB');
  t.equal(formatBytes(5_600_000), '5.6 MB');
  t.equal(formatDuration(8_200), '8.2s');
  t.equal(formatDuration(65_000), '1m05s');
  t.equal(formatDuration(3_723_000), '1h02m03s');
  const ended = info(EgressStatus.EGRESS_COMPLETE, {
    startedAt: 1_700_000_000_000_000_000n,
    endedAt: 1_700_000_008_500_000_000n,
    fileResults: [new FileInfo({ filename: 'a.ogg', location: '/out/a.ogg', size: 56_500n, duration: 8_000_000_000n })],
  });
  t.equal(
    formatInfo(ended),
    ['egress_id  EG_test', 'status     EGRESS_COMPLETE', 'type       track', 'room       r', 'source     TR_1', 'started    2023-11-14T22:13:20Z', 'ended      2023-11-14T22:13:28Z', 'duration   8.5s', 'file       a.ogg  56.5 kB  8.0s  /out/a.ogg'].join('\n'),
  );
  t.equal(egressTable([ended]), ['EGRESS ID  STATUS           TYPE   ROOM  SOURCE  STARTED               DURATION  ERROR', 'EG_test    EGRESS_COMPLETE  track  r     TR_1    2023-11-14T22:13:20Z  8.5s'].join('\n'));
});
