import { connect } from 'node:net';
import { freePort } from './ports.ts';
import { makeTmpDir, spawnService, waitReady } from './process.ts';

export interface RedisInstance {
  /** host:port, the form livekit-server and egress configs expect */
  address: string;
  port: number;
  logPath: string;
  stop(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** A throw-away redis-server on 127.0.0.1 with persistence disabled. */
export async function startRedis(): Promise<RedisInstance> {
  const port = await freePort();
  const tmpDir = makeTmpDir('redis');
  const service = spawnService(
    'redis',
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpDir],
    { tmpDir },
  );
  try {
    await waitReady(service, () => ping(port), 10_000);
  } catch (err) {
    await service.stop({ keepTmp: true });
    throw err;
  }
  return {
    address: `127.0.0.1:${port}`,
    port,
    logPath: service.logPath,
    stop: () => service.stop(),
  };
}
