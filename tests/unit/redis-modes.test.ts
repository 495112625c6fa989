// The node's Redis settings (issue 10, fault 6): TLS, sentinel and cluster are used, not just parsed.
// Each case makes a psrpc round trip through a Bus built from the config, against real redis-servers.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import winston from 'winston';
import { EgressInfo } from '@livekit/protocol';
import { freePort } from '../rig/ports.ts';
import { makeTmpDir, spawnService, waitReady } from '../rig/process.ts';
import { startRedis } from '../rig/redis.ts';
import type { RedisConfig } from '../../shared/src/config/types.ts';
import { createLogger } from '../../shared/src/logging.ts';
import { Bus } from '../../shared/src/psrpc/bus.ts';
import { RpcClient } from '../../shared/src/psrpc/client.ts';
import { RpcServer } from '../../shared/src/psrpc/server.ts';
import { StartEgressRequest } from '../../shared/src/proto/rpc.ts';
import { loadConfig } from '../../supervisor/src/config/load.ts';

const log = createLogger({ level: 'error', json: false });
const BASE: RedisConfig = { address: '', username: '', password: '', db: 0, useTls: false, sentinelMasterName: '', sentinelAddresses: [], clusterAddresses: [] };

async function bus(t: Test, cfg: RedisConfig): Promise<Bus> {
  const b = new Bus(cfg, log);
  t.teardown(() => b.close());
  await b.connect();
  return b;
}

/** A StartEgress served on `serverCfg`'s Redis and called through `clientCfg`'s: both must reach the same data. */
async function roundTrip(t: Test, serverCfg: RedisConfig, clientCfg: RedisConfig): Promise<string> {
  const server = new RpcServer(await bus(t, serverCfg), log);
  const sub = await server.register<StartEgressRequest>(
    {
      service: 'EgressInternal', method: 'StartEgress', requestType: StartEgressRequest, queue: false,
      affinity: () => 1, handle: async (req) => new EgressInfo({ egressId: req.egressId }),
    },
    'modes',
  );
  t.teardown(() => sub.close());
  const client = new RpcClient(await bus(t, clientCfg), 'EgressInternal', log);
  t.teardown(() => client.close());
  const info = await client.call('StartEgress', 'modes', new StartEgressRequest({ egressId: 'EG_modes0000001' }), EgressInfo, {
    timeoutMs: 3000, selection: { acceptFirstAvailable: true, affinityTimeoutMs: 1000 },
  });
  return info.egressId;
}

/** What the Bus logged while a connect failed (ioredis gives the reason to its error event), or undefined when it connected. */
async function connectError(cfg: RedisConfig): Promise<string | undefined> {
  const seen: string[] = [];
  const capture = winston.createLogger({
    transports: [new winston.transports.Stream({ stream: new Writable({ write: (chunk, _, done) => done(void seen.push(String(chunk))) }) })],
  });
  const b = new Bus(cfg, capture);
  try {
    await b.connect();
    return undefined;
  } catch (err) {
    return [(err as Error).message, ...seen].join('\n');
  } finally {
    await b.close();
  }
}

const yamlConfig = (redis: string) => `api_key: k\napi_secret: s\nws_url: ws://x\nredis:\n${redis}`;
const problem = (redis: string): string | undefined => {
  try {
    loadConfig({ body: yamlConfig(redis), env: {} });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

t.test('TLS: use_tls and the tls block reach a TLS-only redis-server', async (t) => {
  const dir = makeTmpDir('redis-tls');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=egress-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const tlsPort = await freePort();
  const redis = await startRedis({
    args: ['--tls-port', String(tlsPort), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no'],
  });
  t.teardown(() => redis.stop());
  const address = `127.0.0.1:${tlsPort}`;
  const tls = { insecure: false, serverName: '', caCertFile: cert, clientCertFile: '', clientKeyFile: '' };

  t.equal(await roundTrip(t, { ...BASE, address: redis.address }, { ...BASE, address, tls }), 'EG_modes0000001',
    'tls.ca_cert_file: a round trip over TLS (the server on the plain port)');
  // use_tls verifies against the system CAs, so it is run where they include the test's certificate.
  // (Refused in this process, the failed handshake raises a second error that ioredis does not listen for.)
  const script = path.join(dir, 'use-tls.mts');
  writeFileSync(script, [
    `import { Bus } from ${JSON.stringify(fileURLToPath(new URL('../../shared/src/psrpc/bus.ts', import.meta.url)))};`,
    `import { createLogger } from ${JSON.stringify(fileURLToPath(new URL('../../shared/src/logging.ts', import.meta.url)))};`,
    `const bus = new Bus(${JSON.stringify({ ...BASE, address, useTls: true })}, createLogger({ level: 'error', json: false }));`,
    'await bus.connect();',
    "await bus.publish('use-tls', new Uint8Array([1]));",
    'await bus.close();',
    "console.log('published');",
  ].join('\n'));
  const run = (env: NodeJS.ProcessEnv) => spawnSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
  t.equal(run({ NODE_EXTRA_CA_CERTS: cert }).stdout.trim(), 'published', 'use_tls: a TLS connection verified against the system CAs');
  t.not(run({}).status, 0, 'use_tls without the CA: the self-signed certificate is refused');
  t.equal(await connectError({ ...BASE, address, tls: { ...tls, caCertFile: '', insecure: true } }), undefined, 'tls.insecure connects');
  const plain = new Redis({ host: '127.0.0.1', port: tlsPort, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  plain.on('error', () => undefined);
  await t.rejects(plain.connect().then(() => plain.ping()), 'control: the port speaks TLS only');
  plain.disconnect();

  t.match(problem(`  address: ${address}\n  tls: { enabled: true, ca_cert_file: ${dir}/missing.pem }\n`),
    /redis\.tls\.ca_cert_file: cannot read .*missing\.pem \(ENOENT\)/, 'an unreadable certificate file refuses the config, naming the key');
  t.match(problem(`  address: ${address}\n  tls: { enabled: true, client_cert_file: ${cert} }\n`),
    /redis\.tls: client_cert_file and client_key_file go together/);
  const { config } = loadConfig({ body: yamlConfig(`  address: ${address}\n  tls: { enabled: true, ca_cert_file: ${cert}, server_name: n }\n`), env: {} });
  t.same(config.redis.tls, { ...tls, serverName: 'n' }, 'the tls block is loaded');
});

t.test('sentinel: the master is found through a real redis-server --sentinel', async (t) => {
  const master = await startRedis();
  t.teardown(() => master.stop());
  const dir = makeTmpDir('sentinel');
  const port = await freePort();
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor egressmaster 127.0.0.1 ${master.port} 1`, ''].join('\n'));
  const sentinel = spawnService('sentinel', 'redis-server', [conf, '--sentinel'], { tmpDir: dir });
  t.teardown(() => sentinel.stop());
  const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  await waitReady(sentinel, async () => {
    if (probe.status !== 'ready') await probe.connect();
    const addr = (await probe.call('SENTINEL', 'get-master-addr-by-name', 'egressmaster')) as string[] | null;
    return addr?.[1] === String(master.port);
  }, 10_000);
  probe.disconnect();

  const viaSentinel = { ...BASE, sentinelMasterName: 'egressmaster', sentinelAddresses: [`127.0.0.1:${port}`] };
  t.equal(await roundTrip(t, { ...BASE, address: master.address }, viaSentinel), 'EG_modes0000001', 'a round trip with the server on the master itself');

  t.match(problem(`  sentinel_addresses: [127.0.0.1:${port}]\n`), /redis\.sentinel_master_name: is required with redis\.sentinel_addresses/);
  t.match(problem(`  address: a:1\n  sentinel_master_name: m\n`), /redis\.sentinel_master_name: needs redis\.sentinel_addresses/);
  const { config } = loadConfig({ body: yamlConfig(`  sentinel_master_name: m\n  sentinel_addresses: [s:1]\n  sentinel_username: su\n  sentinel_password: sp\n`), env: {} });
  t.same([config.redis.sentinelUsername, config.redis.sentinelPassword], ['su', 'sp'], 'no address needed; sentinel credentials loaded');
});

t.test('cluster: three real cluster-mode redis-servers', async (t) => {
  const nodes = await Promise.all([0, 1, 2].map(() => startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] })));
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  const probe = new Redis({ host: '127.0.0.1', port: nodes[0]!.port });
  for (let i = 0; i < 100 && !String(await probe.cluster('INFO')).includes('cluster_state:ok'); i++) await sleep(100);
  probe.disconnect();

  // The server on a plain connection to one node, the client a cluster client that knows only another:
  // PUBLISH crosses the cluster bus. A client that ignored cluster_addresses would reach no node at all.
  const client = { ...BASE, clusterAddresses: [nodes[2]!.address] };
  t.equal(await roundTrip(t, { ...BASE, address: nodes[0]!.address }, client), 'EG_modes0000001', 'a round trip across the cluster');
  t.match(problem(`  cluster_addresses: [a:1]\n  db: 2\n`), /redis\.db: must be 0 with redis\.cluster_addresses/);
  t.match(problem(`  cluster_addresses: [a:1]\n  sentinel_master_name: m\n  sentinel_addresses: [s:1]\n`), /redis\.cluster_addresses: cannot be combined with redis\.sentinel_addresses/);
});
