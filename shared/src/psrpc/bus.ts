// The Redis side of psrpc: PUBLISH/SUBSCRIBE on binary channels, plus the SETNX lock that makes a
// subscription a "queue" (exactly one consumer cluster-wide).
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/types.ts';
import type { Logger } from '../logging.ts';

export type Listener = (payload: Buffer) => void;

export interface Subscription {
  close(): Promise<void>;
}

export function redisOptions(cfg: RedisConfig): RedisOptions {
  const [host, port] = splitAddress(cfg.address);
  return {
    host,
    port,
    username: cfg.username || undefined,
    password: cfg.password || undefined,
    db: cfg.db,
    tls: cfg.useTls ? {} : undefined,
    lazyConnect: true,
    maxRetriesPerRequest: 3,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
  };
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  if (i < 0) return [address, 6379];
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

export class Bus {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(cfg: RedisConfig, private readonly log: Logger) {
    // A subscribed connection cannot PUBLISH or SET, hence two.
    this.pub = new Redis(redisOptions(cfg));
    this.sub = new Redis(redisOptions(cfg));
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
      await this.sub.subscribe(channel);
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
