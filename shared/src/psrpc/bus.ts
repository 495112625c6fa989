// The Redis side of psrpc: PUBLISH/SUBSCRIBE on binary channels, plus the SETNX lock that makes a
// subscription a "queue" (exactly one consumer cluster-wide).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/types.ts';
import type { Logger } from '../logging.ts';

export type Listener = (payload: Buffer) => void;

export interface Subscription {
  close(): Promise<void>;
}

/** livekit/protocol's ClientTLSConfig: TLS 1.2 at least; an enabled `tls` block wins over use_tls. */
function tlsOptions(cfg: RedisConfig): ConnectionOptions | undefined {
  const t = cfg.tls;
  if (!t) return cfg.useTls ? { minVersion: 'TLSv1.2' } : undefined;
  const file = (path: string) => (path ? readFileSync(path) : undefined);
  return {
    minVersion: 'TLSv1.2',
    rejectUnauthorized: !t.insecure,
    servername: t.serverName || undefined,
    ca: file(t.caCertFile),
    cert: file(t.clientCertFile),
    key: file(t.clientKeyFile),
  };
}

const retryStrategy = (attempt: number): number => Math.min(attempt * 200, 2000);

/** What every connection shares, whatever the mode. */
function baseOptions(cfg: RedisConfig): RedisOptions {
  return {
    username: cfg.username || undefined,
    password: cfg.password || undefined,
    tls: tlsOptions(cfg),
    lazyConnect: true,
    maxRetriesPerRequest: 3,
    retryStrategy,
  };
}

function splitAddress(address: string, defaultPort: number): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  if (i < 0) return { host: address, port: defaultPort };
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** As livekit/protocol's GetRedisClient: sentinel if sentinel addresses are set, else cluster, else one server. */
function connection(cfg: RedisConfig): Redis | Cluster {
  const base = baseOptions(cfg);
  if (cfg.sentinelAddresses.length > 0) {
    return new Redis({
      ...base,
      db: cfg.db,
      name: cfg.sentinelMasterName,
      sentinels: cfg.sentinelAddresses.map((a) => splitAddress(a, 26379)),
      sentinelUsername: cfg.sentinelUsername || undefined,
      sentinelPassword: cfg.sentinelPassword || undefined,
      // go-redis dials the sentinels with the same TLS settings as the master.
      ...(base.tls && { enableTLSForSentinelMode: true, sentinelTLS: base.tls }),
      sentinelRetryStrategy: retryStrategy,
    });
  }
  if (cfg.clusterAddresses.length > 0) {
    return new Cluster(cfg.clusterAddresses.map((a) => splitAddress(a, 6379)), {
      lazyConnect: true,
      maxRedirections: cfg.maxRedirects ?? 2,
      clusterRetryStrategy: retryStrategy,
      redisOptions: base,
    });
  }
  return new Redis({ ...base, ...splitAddress(cfg.address, 6379), db: cfg.db });
}

export class Bus {
  private readonly pub: Redis | Cluster;
  private readonly sub: Redis | Cluster;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(cfg: RedisConfig, private readonly log: Logger) {
    // A subscribed connection cannot PUBLISH or SET, hence two.
    this.pub = connection(cfg);
    this.sub = connection(cfg);
    this.sub.on('messageBuffer', (channel: Buffer, payload: Buffer) => this.dispatch(channel.toString(), payload));
    for (const conn of [this.pub, this.sub]) conn.on('error', (err: Error) => this.log.warn('redis error', { error: err.message }));
  }

  async connect(): Promise<void> {
    await Promise.all([this.pub.connect(), this.sub.connect()]);
  }

  get healthy(): boolean {
    return this.pub.status === 'ready' && this.sub.status === 'ready';
  }

  async publish(channel: string, payload: Uint8Array): Promise<void> {
    await this.pub.publish(channel, Buffer.from(payload));
  }

  /** Fan-out subscription: every subscriber receives every message. Resolves once Redis confirmed it. */
  async subscribe(channel: string, listener: Listener): Promise<Subscription> {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      try {
        await this.sub.subscribe(channel);
      } catch (err) {
        // Forgotten, or the next subscriber would skip the SUBSCRIBE that never happened.
        this.listeners.delete(channel);
        throw err;
      }
    }
    set.add(listener);
    return {
      close: async () => {
        const current = this.listeners.get(channel);
        if (!current?.delete(listener) || current.size > 0) return;
        this.listeners.delete(channel);
        if (this.sub.status === 'ready') await this.sub.unsubscribe(channel);
      },
    };
  }

  /**
   * Queue subscription: Redis still delivers to every process; each one races for a 5 s SETNX keyed by
   * base64(sha256(payload)), as psrpc does, and only the winner sees the message.
   */
  async subscribeQueue(channel: string, listener: Listener): Promise<Subscription> {
    return this.subscribe(channel, (payload) => {
      const key = createHash('sha256').update(payload).digest('base64');
      this.pub
        .set(key, String(Math.floor(Math.random() * 2 ** 31)), 'EX', 5, 'NX')
        .then((won) => won === 'OK' && listener(payload))
        .catch((err: Error) => this.log.warn('queue lock failed', { channel, error: err.message }));
    });
  }

  private dispatch(channel: string, payload: Buffer): void {
    for (const listener of this.listeners.get(channel) ?? []) {
      try {
        listener(payload);
      } catch (err) {
        this.log.warn('dropped a message its listener could not handle', { channel, error: (err as Error).message });
      }
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await Promise.allSettled([this.sub.quit(), this.pub.quit()]);
  }
}
