// The stream sink's per-URL life with real gst-launch processes, fed encoded media in GDP as the
// encoder writes it: a URL whose server stops reading is dropped (the stall watch), and
// one whose process dies after it was up is restarted, as often as the outage allows. The
// integration suite (tests/integration/streams.test.ts) does the rest against nginx-rtmp; a stalled
// server there shows only after loopback's TCP buffers fill (bench:kinds measures that).
import t, { type Test } from 'tap';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import { EgressInfo, StreamInfo_Status } from '@livekit/protocol';
import type { Config } from '../../shared/src/config/types.ts';
import type { Logger } from '../../shared/src/logging.ts';
import type { PipelineConfig, StreamOutputPlan } from '../../shared/src/plan/pipeline-config.ts';
import { gdpBufferHeader, gdpCaps, gdpSegment, gdpStreamStart } from '../../handler/src/gst/gdp.ts';
import type { Encoder } from '../../handler/src/sink/encoder.ts';
import { StreamSink, type StreamOptions } from '../../handler/src/sink/stream.ts';
import { establishedSendQueues, sendQueueOf, socketInodes } from '../../handler/src/sink/tcp-progress.ts';
import { waitFor } from '../support/wait.ts';

const CAPS = 'audio/mpeg,mpegversion=4,stream-format=raw,rate=48000,channels=2,codec_data=(buffer)1190';

function harness(t: Test, opts: StreamOptions) {
  const pids: number[] = [];
  let changes = 0;
  const log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;
  const output: StreamOutputPlan = { type: 'stream', protocol: 'rtmp', urls: ['rtmp://127.0.0.1:1/live/secretkey1'] };
  const ctx = {
    plan: { outputs: [output] } as unknown as PipelineConfig,
    config: { testOverrides: {} } as Config,
    log,
    scratch: tmpdir(),
    process: (p: { pid: number }) => void pids.push(p.pid),
    output: () => undefined,
    startedAtNs: () => 0n,
    backupUsed: () => undefined,
    changed: () => void changes++,
    endJob: () => undefined,
  };
  const encoder = { add: () => undefined, finish: async () => undefined } as unknown as Encoder;
  const sink = new StreamSink(ctx, output, encoder, true, opts);
  const audio = new PassThrough();
  // Encoded audio as gdppay writes it: the preamble, then 20 ms buffers of 4 KiB, each a key frame.
  let pts = 0n;
  audio.write(Buffer.concat([gdpStreamStart('audio'), gdpCaps(CAPS), gdpSegment()]));
  const feed = setInterval(() => {
    for (let i = 0; i < 5; i++, pts += 20_000_000n) audio.write(Buffer.concat([gdpBufferHeader(4096, pts, 20_000_000n), Buffer.alloc(4096)]));
  }, 20);
  t.teardown(() => {
    clearInterval(feed);
    sink.abort();
  });
  /** The encoder's end: its output closes. */
  const end = () => {
    clearInterval(feed);
    audio.end();
  };
  return { sink, audio, pids, end, changes: () => changes };
}

t.test('a URL whose server stops reading is dropped after the outage limit, FAILED', async (t) => {
  // A TCP server that accepts and never reads: the window closes and the process's send queue stays full.
  const held: Socket[] = [];
  const server = createServer((s) => {
    s.pause();
    held.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    held.forEach((s) => s.destroy());
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const h = harness(t, { outageLimitMs: 2_000, publishArgs: () => ['fdsrc', 'fd=3', '!', 'tcpclientsink', 'host=127.0.0.1', `port=${port}`, 'sync=false'] });
  await h.sink.start();
  h.sink.attach({ audio: h.audio });
  const t0 = Date.now();
  const error = await h.sink.failed;
  const took = Date.now() - t0;
  t.equal(error.message, 'no outbound progress for 2s', 'the job hears why: its only URL stalled');
  t.equal(error.code, 'unavailable');
  t.ok(took >= 2_000 && took < 20_000, `dropped once the buffers filled and the limit passed (${took} ms)`);
  const info = new EgressInfo();
  h.sink.results(info);
  t.equal(info.streamResults[0]?.status, StreamInfo_Status.FAILED);
  t.equal(info.streamResults[0]?.error, 'no outbound progress for 2s');
  t.equal(info.streamResults[0]?.url, 'rtmp://127.0.0.1:1/live/{sec...ey1}', 'its key redacted');
  t.ok(h.changes() >= 1, 'livekit-server was told');
});

t.test('a URL whose process dies after it was up is restarted, with backoff, and counted', async (t) => {
  const h = harness(t, { outageLimitMs: 20_000, publishArgs: () => ['fdsrc', 'fd=3', '!', 'gdpdepay', '!', 'fakesink', 'sync=false'] });
  await h.sink.start();
  h.sink.attach({ audio: h.audio });
  await waitFor('the first process', async () => h.pids[0], 5_000);
  await new Promise((r) => setTimeout(r, 10_500)); // up: past UP_AFTER_MS
  process.kill(h.pids[0]!, 'SIGKILL');
  const t0 = Date.now();
  const second = await waitFor('a second process', async () => h.pids[1], 10_000);
  const after = Date.now() - t0;
  t.ok(after >= 900, `restarted after the first backoff (${after} ms)`);
  await new Promise((r) => setTimeout(r, 500));
  process.kill(second, 'SIGKILL');
  await waitFor('a third process', async () => h.pids[2], 10_000);
  const info = new EgressInfo();
  h.sink.results(info);
  t.equal(info.streamResults[0]?.status, StreamInfo_Status.ACTIVE, 'still ACTIVE: the outage is young');
  t.equal(info.streamResults[0]?.retries, 2, 'two retries');
  t.ok(info.streamResults[0]!.lastRetryAt > 0n, 'last_retry_at set');
  h.end();
  await h.sink.finish(info);
  t.equal(info.streamResults[0]?.status, StreamInfo_Status.FINISHED, 'FINISHED at the end');
  t.ok(info.streamResults[0]!.duration > 0n, 'with its duration');
});

t.test('send queues from /proc/net/tcp: established sockets only, by inode, summed per process', async (t) => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:2E7B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:9C40 0100007F:2E7B 01 0001F400:00000000 01:00000014 00000000     0        0 2222 2 0000000000000000 20 4 30 10 -1',
    '   2: 0100007F:9C41 0100007F:2E7B 01 00000000:00000000 00:00000000 00000000     0        0 3333 2 0000000000000000 20 4 30 10 -1',
  ].join('\n');
  const queues = establishedSendQueues((f) => {
    if (f === '/proc/net/tcp') return tcp;
    throw new Error('no tcp6');
  });
  t.same([...queues], [[2222, 0x1f400], [3333, 0]], 'the listener is left out; hex queues read');
  t.equal(sendQueueOf([2222, 3333, 9999], queues), 0x1f400);
  t.equal(sendQueueOf([9999], queues), undefined, 'no established TCP socket: nothing to watch');
  const links: Record<string, string> = { '/proc/7/fd/0': '/dev/null', '/proc/7/fd/3': 'socket:[2222]', '/proc/7/fd/4': 'pipe:[5]' };
  t.same(socketInodes(7, () => ['0', '3', '4', '5'], (l) => { const v = links[l]; if (!v) throw new Error('gone'); return v; }), [2222]);
  t.same(socketInodes(8, () => { throw new Error('no such process'); }, () => ''), [], 'a process that is gone has none');
});
