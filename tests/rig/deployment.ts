import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { startLiveKit } from './livekit.ts';
import { startRedis, type RedisInstance, type RedisOptions } from './redis.ts';

/*
 * "Existing deployment" mode: the integration suite runs against a LiveKit server + redis
 * described by a YAML file (ws_url, api_key, api_secret, redis, filter flags), or against
 * one the rig starts locally.
 */

export interface DeploymentRedis {
  address: string;
  username: string;
  password: string;
  db: number;
}

/** Filter flags, named as in the YAML file; all false runs everything. */
export const FLAG_NAMES = [
  'room_only',
  'web_only',
  'track_composite_only',
  'track_only',
  'file_only',
  'stream_only',
  'segments_only',
  'muting',
  'dot_files',
  'short',
] as const;
export type DeploymentFlag = (typeof FLAG_NAMES)[number];
export type DeploymentFlags = Record<DeploymentFlag, boolean>;

export interface Deployment {
  wsUrl: string;
  /** ws_url with the http(s) scheme, for the server APIs (EgressClient, RoomServiceClient) */
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  redis: DeploymentRedis;
  flags: DeploymentFlags;
}

export interface LocalDeployment extends Deployment {
  livekitConfigPath: string;
  livekitLogPath: string;
  redisLogPath: string;
  /** The Redis itself, for fault injection. */
  redisServer: RedisInstance;
  stop(): Promise<void>;
}

/** Environment variable naming the deployment file (set by tests/run-integration.ts). */
export const DEPLOYMENT_ENV = 'EGRESS_TEST_DEPLOYMENT';

const TOP_KEYS = new Set<string>(['ws_url', 'api_key', 'api_secret', 'redis', ...FLAG_NAMES]);
const REDIS_KEYS = new Set(['address', 'username', 'password', 'db']);

export function noFlags(): DeploymentFlags {
  return Object.fromEntries(FLAG_NAMES.map((f) => [f, false])) as DeploymentFlags;
}

export function httpUrlOf(wsUrl: string): string {
  return wsUrl.replace(/^ws(s?):\/\//, 'http$1://');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseDeployment(text: string, source = 'deployment'): Deployment {
  const doc: unknown = parse(text);
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (!isRecord(doc)) return fail('expected a YAML mapping');
  // an unknown key is most likely a misspelt filter flag, which would silently run everything
  for (const key of Object.keys(doc)) if (!TOP_KEYS.has(key)) fail(`unknown key "${key}"`);

  const str = (v: unknown, name: string): string =>
    typeof v === 'string' && v !== '' ? v : fail(`${name} must be a non-empty string`);
  const optStr = (v: unknown, name: string): string =>
    v === undefined || v === null ? '' : typeof v === 'string' || typeof v === 'number' ? String(v) : fail(`${name} must be a string`);

  const redisDoc = doc.redis;
  if (!isRecord(redisDoc)) return fail('redis must be a mapping with at least "address"');
  for (const key of Object.keys(redisDoc)) if (!REDIS_KEYS.has(key)) fail(`unknown key "redis.${key}"`);
  const db = redisDoc.db ?? 0;
  if (typeof db !== 'number' || !Number.isInteger(db) || db < 0) fail('redis.db must be a non-negative integer');

  const flags = noFlags();
  for (const flag of FLAG_NAMES) {
    const value = doc[flag];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'boolean') fail(`${flag} must be true or false`);
    flags[flag] = value as boolean;
  }

  const wsUrl = str(doc.ws_url, 'ws_url');
  if (!/^wss?:\/\//.test(wsUrl)) fail('ws_url must start with ws:// or wss://');
  return {
    wsUrl,
    httpUrl: httpUrlOf(wsUrl),
    apiKey: str(doc.api_key, 'api_key'),
    apiSecret: str(doc.api_secret, 'api_secret'),
    redis: {
      address: str(redisDoc.address, 'redis.address'),
      username: optStr(redisDoc.username, 'redis.username'),
      password: optStr(redisDoc.password, 'redis.password'),
      db: db as number,
    },
    flags,
  };
}

/**
 * Reads a deployment file. Without a path, reads $EGRESS_TEST_DEPLOYMENT, and returns
 * undefined when that is unset (the caller then starts a local deployment).
 */
export function loadDeployment(path: string): Deployment;
export function loadDeployment(): Deployment | undefined;
export function loadDeployment(path?: string): Deployment | undefined {
  const file = path ?? process.env[DEPLOYMENT_ENV];
  if (!file) return undefined;
  return parseDeployment(readFileSync(file, 'utf8'), file);
}

export function writeDeploymentFile(d: Deployment, path: string): void {
  const doc = {
    ws_url: d.wsUrl,
    api_key: d.apiKey,
    api_secret: d.apiSecret,
    redis: { ...d.redis },
    ...d.flags,
  };
  writeFileSync(path, stringify(doc));
}

/** Starts redis + livekit-server on 127.0.0.1; stop() tears both down. */
export async function startLocalDeployment(opts?: { webhookUrl?: string; redis?: RedisOptions }): Promise<LocalDeployment> {
  const redis = await startRedis(opts?.redis);
  try {
    const livekit = await startLiveKit({ redisAddress: redis.address, webhookUrl: opts?.webhookUrl });
    return {
      wsUrl: livekit.wsUrl,
      httpUrl: livekit.httpUrl,
      apiKey: livekit.apiKey,
      apiSecret: livekit.apiSecret,
      redis: { address: redis.address, username: '', password: '', db: 0 },
      flags: noFlags(),
      livekitConfigPath: livekit.configPath,
      livekitLogPath: livekit.logPath,
      redisLogPath: redis.logPath,
      redisServer: redis,
      stop: async () => {
        await livekit.stop();
        await redis.stop();
      },
    };
  } catch (err) {
    await redis.stop();
    throw err;
  }
}
