import { connect } from 'node:net';
import { rmSync } from 'node:fs';
import { freePort } from './ports.ts';
import { makeTmpDir, spawnService, waitReady, type Service } from './process.ts';

export interface RedisInstance {
  /** host:port, the form livekit-server and egress configs expect */
  address: string;
  port: number;
  logPath: string;
  /** SIGSTOP: the connections stay open and nothing answers. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** SIGKILL; restart() brings it back on the same port with the same data. */
  kill(): Promise<void>;
  /** Nothing when it is running, so a test's teardown may call it whatever happened. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /**
   * Every write to an append-only file, synced: a SIGKILLed server restarts with what it held, as a
   * production Redis with AOF does. Off by default (no persistence at all).
   */
  durable?: boolean;
  /** Extra redis-server arguments (TLS ports and certificates). */
  args?: string[];
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

/** A throw-away redis-server on 127.0.0.1, persistence disabled unless `durable`. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisInstance> {
  const port = await freePort();
  const tmpDir = makeTmpDir('redis');
  const persistence = opts.durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', tmpDir, ...(opts.args ?? [])];

  const launch = async (): Promise<Service> => {
    const service = spawnService('redis', 'redis-server', args, { tmpDir });
    try {
      await waitReady(service, () => ping(port), 10_000);
    } catch (err) {
      await service.stop({ keepTmp: true });
      throw err;
    }
    return service;
  };
  let service = await launch();
  return {
    address: `127.0.0.1:${port}`,
    port,
    logPath: service.logPath,
    pause: () => service.signal('SIGSTOP'),
    resume: () => service.signal('SIGCONT'),
    kill: async () => {
      service.signal('SIGKILL');
      await service.stop({ keepTmp: true });
    },
    restart: async () => {
      if (service.exited) service = await launch();
    },
    stop: async () => {
      service.signal('SIGCONT');
      await service.stop({ keepTmp: true });
      if (!process.env.RIG_KEEP_LOGS) rmSync(tmpDir, { recursive: true, force: true });
    },
  };
}
