// The IOInfo reporter's queue rules (issue 10, fault 2) against a real Redis and a psrpc IOInfo
// server of our own that records what it receives and can hold or refuse calls.
import t, { type Test } from 'tap';
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import { startRedis } from '../rig/redis.ts';
import type { RedisConfig } from '../../shared/src/config/types.ts';
import { EgressError } from '../../shared/src/errors.ts';
import { createLogger } from '../../shared/src/logging.ts';
import { Bus } from '../../shared/src/psrpc/bus.ts';
import { RpcServer } from '../../shared/src/psrpc/server.ts';
import { Empty } from '../../shared/src/proto/rpc.ts';
import { IoClient } from '../../supervisor/src/io/io-client.ts';

const redis = await startRedis();
t.teardown(() => redis.stop());
const cfg: RedisConfig = { address: redis.address, username: '', password: '', db: 0, useTls: false, sentinelMasterName: '', sentinelAddresses: [], clusterAddresses: [] };
const log = createLogger({ level: 'error', json: false });
const { ACTIVE, ENDING, COMPLETE } = { ACTIVE: EgressStatus.EGRESS_ACTIVE, ENDING: EgressStatus.EGRESS_ENDING, COMPLETE: EgressStatus.EGRESS_COMPLETE };

/** An IOInfo server whose UpdateEgress waits for `gate` and then answers `answer()`. */
async function ioServer(t: Test, answer: () => EgressError | undefined = () => undefined) {
  const bus = new Bus(cfg, log);
  await bus.connect();
  t.teardown(() => bus.close());
  const server = new RpcServer(bus, log);
  const received: EgressStatus[] = [];
  let open!: () => void;
  let gate = new Promise<void>((r) => (open = r));
  const subs = await Promise.all([
    server.register({ service: 'IOInfo', method: 'CreateEgress', requestType: EgressInfo, queue: true, handle: async () => new Empty() }, ''),
    server.register({
      service: 'IOInfo', method: 'UpdateEgress', requestType: EgressInfo, queue: true,
      handle: async (info: EgressInfo) => {
        received.push(info.status);
        await gate;
        const err = answer();
        if (err) throw err;
        return new Empty();
      },
    }, ''),
  ]);
  t.teardown(() => Promise.all(subs.map((s) => s.close())));
  return { received, release: () => open(), hold: () => void (gate = new Promise<void>((r) => (open = r))) };
}

async function ioClient(t: Test, retryWindowMs = 60_000) {
  const bus = new Bus(cfg, log);
  await bus.connect();
  const io = new IoClient(bus, log, { createMs: 2000, updateMs: 2000, retryWindowMs });
  t.teardown(async () => {
    await io.close();
    await bus.close();
  });
  return io;
}

const info = (egressId: string, status: EgressStatus) => new EgressInfo({ egressId, status });

t.test('latest wins, and a queued final status is never replaced by an earlier kind', async (t) => {
  const server = await ioServer(t);
  const io = await ioClient(t);
  await io.createEgress(info('EG_latest000001', EgressStatus.EGRESS_STARTING));
  void io.updateEgress(info('EG_latest000001', ACTIVE));
  await new Promise((r) => setTimeout(r, 300)); // ACTIVE is in flight, held by the server
  void io.updateEgress(info('EG_latest000001', ENDING));
  void io.updateEgress(info('EG_latest000001', COMPLETE));
  void io.updateEgress(info('EG_latest000001', ACTIVE)); // late: must not follow COMPLETE
  server.release();
  await io.flush('EG_latest000001');
  t.same(server.received, [ACTIVE, COMPLETE], 'ENDING was replaced by COMPLETE, and the late ACTIVE dropped');
});

t.test('an answer that is not transient drops the update; the next one goes out', async (t) => {
  let refuse = true;
  const server = await ioServer(t, () => (refuse ? new EgressError('invalid_argument', 'no') : undefined));
  server.release();
  const io = await ioClient(t);
  await io.createEgress(info('EG_refused00001', EgressStatus.EGRESS_STARTING));
  await io.updateEgress(info('EG_refused00001', ACTIVE));
  refuse = false;
  await io.updateEgress(info('EG_refused00001', COMPLETE));
  t.same(server.received, [ACTIVE, COMPLETE], 'each sent once: a refusal is not retried');
});

t.test('transient failures are retried, then abandoned at the retry window: flush is bounded', async (t) => {
  // No IOInfo server at all: every call ends "no response from servers".
  const io = await ioClient(t, 1500);
  const started = Date.now();
  await io.updateEgress(info('EG_nobody000001', COMPLETE));
  await io.flush('EG_nobody000001');
  const took = Date.now() - started;
  t.ok(took >= 1500 && took < 1500 + 2000 + 1000, `abandoned after the window plus at most one attempt (${took} ms)`);
  t.equal(io.healthy, false, 'the client reports itself unhealthy, so the node stops bidding');
});
