// psrpc calls while Redis fails under them (issue 10, fault 1): the caller gets an EgressError and
// nothing is left to reject unobserved, which would end the process.
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { EgressInfo } from '@livekit/protocol';
import { startRedis, type RedisInstance } from '../rig/redis.ts';
import type { RedisConfig } from '../../shared/src/config/types.ts';
import { EgressError } from '../../shared/src/errors.ts';
import { createLogger } from '../../shared/src/logging.ts';
import { Bus } from '../../shared/src/psrpc/bus.ts';
import { RpcClient } from '../../shared/src/psrpc/client.ts';
import { RpcServer } from '../../shared/src/psrpc/server.ts';
import { StartEgressRequest } from '../../shared/src/proto/rpc.ts';

const log = createLogger({ level: 'error', json: false });
const OPTS = { timeoutMs: 3000, selection: { acceptFirstAvailable: true, affinityTimeoutMs: 1000 } };

// Counted, not fatal, so the test can say what happened; before the fix each case below left one.
const rejections: unknown[] = [];
const onRejection = (reason: unknown) => rejections.push(reason);
process.on('unhandledRejection', onRejection);
t.teardown(() => void process.off('unhandledRejection', onRejection));

async function rig(t: Test, redis: RedisInstance) {
  const cfg: RedisConfig = { address: redis.address, username: '', password: '', db: 0, useTls: false, sentinelMasterName: '', sentinelAddresses: [], clusterAddresses: [] };
  const serverBus = new Bus(cfg, log);
  const clientBus = new Bus(cfg, log);
  await Promise.all([serverBus.connect(), clientBus.connect()]);
  t.teardown(() => Promise.all([serverBus.close(), clientBus.close()]));
  const server = new RpcServer(serverBus, log);
  await server.register<StartEgressRequest>(
    {
      service: 'EgressInternal',
      method: 'StartEgress',
      requestType: StartEgressRequest,
      queue: false,
      affinity: () => 1,
      handle: async (req) => new EgressInfo({ egressId: req.egressId }),
    },
    'faults',
  );
  const client = new RpcClient(clientBus, 'EgressInternal', log);
  const call = (id: string) =>
    client.call('StartEgress', 'faults', new StartEgressRequest({ egressId: id }), EgressInfo, OPTS).then(
      (info) => info,
      (err: unknown) => err,
    );
  return { call };
}

t.test('Redis SIGSTOPped under a call: the caller gets request timed out, nothing rejects unobserved', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const { call } = await rig(t, redis);
  t.equal(((await call('EG_before000001')) as EgressInfo).egressId, 'EG_before000001', 'control: a call goes through');

  rejections.length = 0;
  redis.pause();
  const started = Date.now();
  const err = await call('EG_paused000001');
  t.ok(err instanceof EgressError, `an EgressError: ${String(err)}`);
  t.equal((err as EgressError).code, 'deadline_exceeded');
  t.ok(Date.now() - started >= OPTS.timeoutMs - 100, 'it waited the whole call timeout, publish included');
  await sleep(200);
  t.same(rejections, [], 'no unhandled rejection');

  redis.resume();
  t.equal(((await call('EG_after0000001')) as EgressInfo).egressId, 'EG_after0000001', 'calls go through again once Redis answers');
});

t.test('Redis SIGKILLed under a call: the publish error reaches the caller, then calls work after a restart', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const { call } = await rig(t, redis);
  t.ok((await call('EG_before000002')) instanceof EgressInfo, 'control: a call goes through');

  rejections.length = 0;
  await redis.kill();
  const err = await call('EG_killed000002');
  t.ok(err instanceof EgressError, `an EgressError: ${String(err)}`);
  t.equal((err as EgressError).code, 'unavailable');
  t.match((err as EgressError).message, /^redis unavailable: /, "the message is the publish error");
  await sleep(200);
  t.same(rejections, [], 'no unhandled rejection');

  await redis.restart();
  const after = await (async () => {
    for (let i = 0; i < 20; i++) {
      const r = await call(`EG_after00000${String(i).padStart(2, '0')}`);
      if (r instanceof EgressInfo) return r;
      await sleep(250);
    }
    return undefined;
  })();
  t.ok(after, 'calls go through again after Redis restarted');
  t.same(rejections, []);
});
