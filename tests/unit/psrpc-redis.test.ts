// psrpc over a real redis-server: claims, selection, queues, errors and the SETNX lock (psrpc-wire §1–3, §5).
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { Redis } from 'ioredis';
import type { Message } from '@bufbuild/protobuf';
import { EgressInfo, EgressStatus, StopEgressRequest, TrackEgressRequest } from '@livekit/protocol';
import { startRedis } from '../rig/redis.ts';
import type { RedisConfig } from '../../shared/src/config/types.ts';
import { EgressError } from '../../shared/src/errors.ts';
import { createLogger } from '../../shared/src/logging.ts';
import { Bus, type Subscription } from '../../shared/src/psrpc/bus.ts';
import { channels } from '../../shared/src/psrpc/channels.ts';
import { RpcClient, type Selection } from '../../shared/src/psrpc/client.ts';
import { decodeFrame, encodeFrame } from '../../shared/src/psrpc/frame.ts';
import { RpcServer, type MethodSpec } from '../../shared/src/psrpc/server.ts';
import { nowNs } from '../../shared/src/psrpc/time.ts';
import { ClaimResponse, Request } from '../../shared/src/proto/internal.ts';
import { ListActiveEgressRequest, ListActiveEgressResponse, StartEgressRequest } from '../../shared/src/proto/rpc.ts';

const redis = await startRedis();
const log = createLogger({ level: 'error', json: false });
const cfg: RedisConfig = {
  address: redis.address, username: '', password: '', db: 0, useTls: false,
  sentinelMasterName: '', sentinelAddresses: [], clusterAddresses: [],
};

// Everything opened below is closed here, newest first, then redis-server goes.
const cleanups: (() => Promise<unknown>)[] = [];
t.teardown(async () => {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  await redis.stop();
});

const raw = new Redis({ host: '127.0.0.1', port: redis.port });
cleanups.push(() => raw.quit());

/** A Bus whose claims leave late, to control which server's claim reaches the client first. */
class DelayedBus extends Bus {
  constructor(private readonly claimDelayMs: number) {
    super(cfg, log);
  }
  override async publish(channel: string, payload: Uint8Array): Promise<void> {
    if (this.claimDelayMs && channel.endsWith('|CLAIM')) await sleep(this.claimDelayMs);
    return super.publish(channel, payload);
  }
}

async function newBus(claimDelayMs = 0): Promise<Bus> {
  const bus = new DelayedBus(claimDelayMs);
  await bus.connect();
  cleanups.push(() => bus.close());
  return bus;
}

async function newServer<Req extends Message<Req>>(spec: MethodSpec<Req>, topic: string, claimDelayMs = 0) {
  const server = new RpcServer(await newBus(claimDelayMs), log);
  const sub: Subscription = await server.register(spec, topic);
  cleanups.push(() => sub.close());
  return server;
}

async function newClient(service: string): Promise<RpcClient> {
  const client = new RpcClient(await newBus(), service, log);
  cleanups.push(() => client.close());
  return client;
}

/** A plain ioredis subscriber recording every payload published on `channel`. */
async function observe(channel: string): Promise<Buffer[]> {
  const sub = new Redis({ host: '127.0.0.1', port: redis.port });
  cleanups.push(() => sub.quit());
  const frames: Buffer[] = [];
  sub.on('messageBuffer', (ch: Buffer, payload: Buffer) => {
    if (ch.toString() === channel) frames.push(payload);
  });
  await sub.subscribe(channel);
  return frames;
}

const claimsIn = (frames: Buffer[]) => frames.map((f) => decodeFrame('ClaimRequest', f));

// livekit-server's StartEgress selection options (protocol rpc/egress_client.go).
const START_SELECTION: Selection = { maximumAffinity: 1, affinityTimeoutMs: 1000, shortCircuitTimeoutMs: 500 };
const START_OPTS = { timeoutMs: 3000, selection: START_SELECTION };
const QUEUE_OPTS = { timeoutMs: 3000, selection: { acceptFirstAvailable: true, affinityTimeoutMs: 1000 } };

function startSpec(label: string, invoked: string[], affinity?: number): MethodSpec<StartEgressRequest> {
  return {
    service: 'EgressInternal',
    method: 'StartEgress',
    requestType: StartEgressRequest,
    queue: false,
    affinity: affinity === undefined ? undefined : () => affinity,
    handle: async (req) => {
      invoked.push(label);
      return new EgressInfo({ egressId: req.egressId, roomName: label });
    },
  };
}

const startRequest = (egressId: string) =>
  new StartEgressRequest({ egressId, roomId: 'RM_1', request: { case: 'track', value: new TrackEgressRequest({ roomName: 'room', trackId: 'TR_1' }) } });

t.test('unary call round-trip: the server gets the decoded request, the client decodes the response', async (t) => {
  let seen: { egressId: string; trackId: string; deadlineNs: bigint } | undefined;
  await newServer<StartEgressRequest>(
    {
      ...startSpec('only', []),
      handle: async (req, deadlineNs) => {
        seen = { egressId: req.egressId, trackId: req.request.case === 'track' ? req.request.value.trackId : '', deadlineNs };
        return new EgressInfo({ egressId: req.egressId, roomName: 'room', status: EgressStatus.EGRESS_STARTING });
      },
    },
    'roundtrip',
  );
  const client = await newClient('EgressInternal');
  const before = nowNs();
  const info = await client.call('StartEgress', 'roundtrip', startRequest('EG_roundtrip01'), EgressInfo, START_OPTS);
  t.ok(info instanceof EgressInfo);
  t.equal(info.egressId, 'EG_roundtrip01');
  t.equal(info.roomName, 'room');
  t.equal(seen?.egressId, 'EG_roundtrip01');
  t.equal(seen?.trackId, 'TR_1');
  // The handler's deadline is the request expiry: sent_at + 3 s.
  const ahead = Number((seen!.deadlineNs - before) / 1_000_000n);
  t.ok(ahead >= 2900 && ahead <= 3200, `deadline ${ahead} ms after the call`);
});

t.test('selection with StartEgress options', async (t) => {
  t.test('1.0 beats 0.5 at once, even when the 0.5 claim arrives first', async (t) => {
    const invoked: string[] = [];
    const low = await newServer(startSpec('low', invoked, 0.5), 'sel_max');
    const high = await newServer(startSpec('high', invoked, 1.0), 'sel_max', 100);
    const client = await newClient('EgressInternal');
    const claims = await observe(channels.claimRequest('EgressInternal', client.clientId));
    const started = Date.now();
    const info = await client.call('StartEgress', 'sel_max', startRequest('EG_selmax00001'), EgressInfo, START_OPTS);
    const elapsed = Date.now() - started;
    t.equal(info.roomName, 'high');
    // Chosen on arrival (MaximumAffinity), not after the 500 ms short circuit.
    t.ok(elapsed < 450, `answered after ${elapsed} ms`);
    await sleep(300);
    t.same(invoked, ['high'], 'only the winner ran its handler');
    t.same(claimsIn(claims).map((c) => [c.serverId, c.affinity]), [[low.serverId, 0.5], [high.serverId, 1]]);
  });

  for (const delayed of ['a', 'b'] as const) {
    t.test(`0.5 vs 0.5: the earliest claim wins (server ${delayed} claims late)`, async (t) => {
      const invoked: string[] = [];
      const topic = `sel_tie_${delayed}`;
      const a = await newServer(startSpec('a', invoked, 0.5), topic, delayed === 'a' ? 100 : 0);
      const b = await newServer(startSpec('b', invoked, 0.5), topic, delayed === 'b' ? 100 : 0);
      const client = await newClient('EgressInternal');
      const claims = await observe(channels.claimRequest('EgressInternal', client.clientId));
      const started = Date.now();
      const info = await client.call('StartEgress', topic, startRequest('EG_seltie00001'), EgressInfo, START_OPTS);
      const elapsed = Date.now() - started;
      const early = delayed === 'a' ? 'b' : 'a';
      t.equal(info.roomName, early);
      // Decided by the short circuit, 500 ms after the first claim.
      t.ok(elapsed >= 450, `answered after ${elapsed} ms`);
      await sleep(300);
      t.same(invoked, [early], 'exactly one handler ran');
      const ids = claimsIn(claims).map((c) => c.serverId);
      t.same(ids, early === 'a' ? [a.serverId, b.serverId] : [b.serverId, a.serverId]);
    });
  }

  t.test('affinity -1 sends no claim; the other server wins', async (t) => {
    const invoked: string[] = [];
    const refusing = await newServer(startSpec('refusing', invoked, -1), 'sel_neg');
    const willing = await newServer(startSpec('willing', invoked, 0.5), 'sel_neg');
    const client = await newClient('EgressInternal');
    const claims = await observe(channels.claimRequest('EgressInternal', client.clientId));
    const info = await client.call('StartEgress', 'sel_neg', startRequest('EG_selneg00001'), EgressInfo, START_OPTS);
    t.equal(info.roomName, 'willing');
    await sleep(300);
    const ids = claimsIn(claims).map((c) => c.serverId);
    t.same(ids, [willing.serverId], 'the observer sees the willing claim only');
    t.notOk(ids.includes(refusing.serverId));
    t.same(invoked, ['willing']);
  });

  t.test('affinity -1 alone: no claim, the call fails unavailable "no response from servers"', async (t) => {
    const invoked: string[] = [];
    await newServer(startSpec('refusing', invoked, -1), 'sel_none');
    const client = await newClient('EgressInternal');
    const claims = await observe(channels.claimRequest('EgressInternal', client.clientId));
    const started = Date.now();
    const err = await client.call('StartEgress', 'sel_none', startRequest('EG_selnone0001'), EgressInfo, START_OPTS).then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    t.ok(err instanceof EgressError, 'rejects with an EgressError');
    t.equal((err as EgressError).code, 'unavailable');
    t.equal((err as EgressError).message, 'no response from servers');
    t.ok(elapsed >= 950, `gave up after the 1 s affinity window (${elapsed} ms)`);
    t.equal(claims.length, 0, 'no ClaimRequest on the CLAIM channel');
    t.same(invoked, []);
  });
});

t.test('a handler error reaches the client with its code and text', async (t) => {
  await newServer<StartEgressRequest>(
    {
      ...startSpec('x', []),
      handle: async () => {
        throw new EgressError('not_found', 'egress not found');
      },
    },
    'errors',
  );
  const client = await newClient('EgressInternal');
  const res = await client.call('StartEgress', 'errors', startRequest('EG_errors00001'), EgressInfo, START_OPTS).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(res instanceof EgressError);
  t.equal((res as EgressError).code, 'not_found');
  t.equal((res as EgressError).message, 'egress not found');
});

t.test('queue subscriptions: one consumer per message across processes', async (t) => {
  t.test('Bus.subscribeQueue on two connections delivers each payload once (fan-out delivers twice)', async (t) => {
    const [b1, b2] = [await newBus(), await newBus()];
    const got: string[] = [];
    const fanout: string[] = [];
    const subs = [
      await b1.subscribeQueue('test|queue', (p) => got.push(p.toString())),
      await b2.subscribeQueue('test|queue', (p) => got.push(p.toString())),
      await b1.subscribe('test|fanout', (p) => fanout.push(p.toString())),
      await b2.subscribe('test|fanout', (p) => fanout.push(p.toString())),
    ];
    for (let i = 0; i < 20; i++) {
      await raw.publish('test|queue', `msg-${i}`);
      await raw.publish('test|fanout', `msg-${i}`);
    }
    await sleep(300);
    t.equal(got.length, 20);
    t.equal(new Set(got).size, 20);
    t.equal(fanout.length, 40, 'control: a plain subscription reaches both');
    await Promise.all(subs.map((s) => s.close()));
  });

  t.test('a queue method on two servers: 20 requests, 20 claims, 20 handler runs', async (t) => {
    const handled: string[] = [];
    const stopSpec = (label: string): MethodSpec<StopEgressRequest> => ({
      service: 'EgressHandler',
      method: 'StopEgress',
      requestType: StopEgressRequest,
      queue: true,
      handle: async (req) => {
        handled.push(req.egressId);
        return new EgressInfo({ egressId: req.egressId, roomName: label });
      },
    });
    await newServer(stopSpec('one'), 'EG_queue000001');
    await newServer(stopSpec('two'), 'EG_queue000001');
    const client = await newClient('EgressHandler');
    const claims = await observe(channels.claimRequest('EgressHandler', client.clientId));
    const ids = Array.from({ length: 20 }, (_, i) => `EG_q${String(i).padStart(10, '0')}`);
    const infos = await Promise.all(
      ids.map((egressId) => client.call('StopEgress', 'EG_queue000001', new StopEgressRequest({ egressId }), EgressInfo, QUEUE_OPTS)),
    );
    t.same(infos.map((i) => i.egressId), ids);
    await sleep(300);
    t.equal(handled.length, 20, 'handler invocations');
    t.equal(new Set(handled).size, 20, 'no duplicates');
    // Without the lock both servers would claim every request.
    t.equal(claims.length, 20, 'one claim per request');
    t.equal(new Set(claimsIn(claims).map((c) => c.requestId)).size, 20);
  });

  t.test('the SETNX key is base64(sha256(payload)) with a TTL of at most 5 s', async (t) => {
    await newServer<StopEgressRequest>(
      {
        service: 'EgressHandler',
        method: 'StopEgress',
        requestType: StopEgressRequest,
        queue: true,
        handle: async (req) => new EgressInfo({ egressId: req.egressId }),
      },
      'EG_setnx000001',
    );
    const requests = await observe(channels.request('EgressHandler', 'StopEgress', 'EG_setnx000001'));
    const client = await newClient('EgressHandler');
    await client.call('StopEgress', 'EG_setnx000001', new StopEgressRequest({ egressId: 'EG_setnx000001' }), EgressInfo, QUEUE_OPTS);
    t.equal(requests.length, 1);
    const payload = requests[0]!;
    const key = createHash('sha256').update(payload).digest('base64');
    t.equal(key.length, 44);
    t.equal(await raw.exists(key), 1, `key ${key} exists`);
    const pttl = await raw.pttl(key);
    t.ok(pttl > 0 && pttl <= 5000, `pttl ${pttl} ms`);
    t.match(await raw.get(key), /^\d+$/, 'value is a decimal integer');
    // The payload is the frame as published: an internal.Request for this egress.
    t.equal(StopEgressRequest.fromBinary(decodeFrame('Request', payload).rawRequest).egressId, 'EG_setnx000001');
  });
});

t.test('raw Request frames', async (t) => {
  const invoked: string[] = [];
  const server = await newServer(startSpec('raw', invoked, 1), 'rawframes');
  const clientId = 'CLI_rawframes001';
  const claims = await observe(channels.claimRequest('EgressInternal', clientId));
  const responses = await observe(channels.response('EgressInternal', clientId));
  const reqChannel = channels.request('EgressInternal', 'StartEgress', 'rawframes');
  const publishRequest = (requestId: string, expiry: bigint, rawRequest: Uint8Array) =>
    raw.publish(reqChannel, Buffer.from(encodeFrame('Request', new Request({ requestId, clientId, sentAt: nowNs(), expiry, rawRequest }))));

  t.test('an expired request gets no claim, no response, no handler', async (t) => {
    await publishRequest('REQ_expired00001', nowNs() - 1_000_000_000n, startRequest('EG_expired0001').toBinary());
    await sleep(400);
    t.equal(claims.length, 0);
    t.equal(responses.length, 0);
    t.same(invoked, []);

    // Control: the same request, still valid, is claimed. Then name another winner so the server lets go.
    await publishRequest('REQ_valid0000001', nowNs() + 2_000_000_000n, startRequest('EG_expired0001').toBinary());
    await sleep(400);
    t.same(claimsIn(claims).map((c) => [c.requestId, c.serverId]), [['REQ_valid0000001', server.serverId]]);
    await raw.publish(
      channels.claimResponse('EgressInternal', 'StartEgress', 'rawframes'),
      Buffer.from(encodeFrame('ClaimResponse', new ClaimResponse({ requestId: 'REQ_valid0000001', serverId: 'SRV_someoneelse' }))),
    );
    await sleep(200);
    t.equal(responses.length, 0, 'a loser never answers');
    t.same(invoked, []);
    claims.length = 0;
  });

  t.test('an undecodable raw_request is answered malformed_request without a claim', async (t) => {
    const garbage = Uint8Array.from([0x0a, 0x10, 0x41]); // field 1, length 16, one byte present
    t.throws(() => StartEgressRequest.fromBinary(garbage), 'the garbage really does not decode');
    await publishRequest('REQ_garbage00001', nowNs() + 2_000_000_000n, garbage);
    await sleep(400);
    t.equal(claims.length, 0, 'no claim');
    t.equal(responses.length, 1, 'one response');
    const res = decodeFrame('Response', responses[0]!);
    t.equal(res.requestId, 'REQ_garbage00001');
    t.equal(res.serverId, server.serverId);
    t.equal(res.code, 'malformed_request');
    t.not(res.error, '', 'error text is non-empty, so Go reads it as an error');
    t.equal(res.rawResponse.length, 0);
    t.same(invoked, []);
  });

  t.test('through RpcClient the malformed_request error surfaces after the selection window', async (t) => {
    const client = await newClient('EgressInternal');
    const bogus = { toBinary: () => Uint8Array.from([0x0a, 0x10, 0x41]) } as unknown as Message;
    const err = await client.call('StartEgress', 'rawframes', bogus, EgressInfo, START_OPTS).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof EgressError);
    t.equal((err as EgressError).code, 'malformed_request');
    t.same(invoked, []);
  });
});

t.test('callMulti collects every server answer without claims', async (t) => {
  const multiSpec = (egressId: string): MethodSpec<InstanceType<typeof ListActiveEgressRequest>> => ({
    service: 'EgressInternal',
    method: 'ListActiveEgress',
    requestType: ListActiveEgressRequest,
    queue: false,
    multi: true,
    handle: async () => new ListActiveEgressResponse({ egressIds: [egressId] }),
  });
  await newServer(multiSpec('EG_multiaaaaaaa'), 'multi');
  await newServer(multiSpec('EG_multibbbbbbb'), 'multi');
  const client = await newClient('EgressInternal');
  const claims = await observe(channels.claimRequest('EgressInternal', client.clientId));
  const results = await client.callMulti('ListActiveEgress', 'multi', new ListActiveEgressRequest(), ListActiveEgressResponse, 500);
  t.equal(results.length, 2);
  t.same(results.flatMap((r) => r.egressIds as string[]).sort(), ['EG_multiaaaaaaa', 'EG_multibbbbbbb']);
  t.equal(claims.length, 0, 'multi methods do not claim');
});

t.test('a reply that cannot be published (Redis gone) is logged, not an unhandled rejection', async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  t.teardown(() => void process.off('unhandledRejection', onRejection));

  const bus = await newBus();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inHandler = new Promise<void>((r) => (entered = r));
  const server = new RpcServer(bus, log);
  await server.register<StartEgressRequest>(
    {
      ...startSpec('gone', []),
      handle: async (req) => {
        entered();
        await gate;
        return new EgressInfo({ egressId: req.egressId });
      },
    },
    'gone',
  );
  const client = await newClient('EgressInternal');
  const call = client
    .call('StartEgress', 'gone', startRequest('EG_gone0000001'), EgressInfo, { ...START_OPTS, timeoutMs: 1000 })
    .then(() => undefined, (e: unknown) => e);
  await inHandler;
  await bus.close();
  release();
  const err = await call;
  t.equal((err as EgressError).code, 'deadline_exceeded', 'the client times out waiting');
  await sleep(100);
  t.same(rejections, []);
});
