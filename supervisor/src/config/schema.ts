// JSON schema of the raw YAML config. It accepts both layouts: the current Go egress one
// (`storage:`, `backup:`, `logging.level`) and the older product-brief one (top-level `s3:` etc.,
// `backup_storage`, `log_level`). Relations between keys (layout clashes, one provider per block,
// required keys after env fallbacks) are checked in load.ts, where the messages can name both keys.

import type { ErrorObject, Options, SchemaObject, ValidateFunction } from 'ajv';
import type { LogLevel } from '@egress/shared/config/types.ts';

/** A string-typed key. YAML numbers and booleans are taken as their text, as Go's yaml.v3 does. */
export type Scalar = string | number | boolean;
/** A Go-style duration string ("1h30m", "2750ms") or a number of seconds. */
export type RawDuration = string | number;

export interface RawProxy { url?: Scalar; username?: Scalar; password?: Scalar }
export interface RawS3 {
  sts_endpoint?: Scalar;
  access_key?: Scalar;
  secret?: Scalar;
  session_token?: Scalar;
  assume_role_arn?: Scalar;
  assume_role_external_id?: Scalar;
  region?: Scalar;
  endpoint?: Scalar;
  bucket?: Scalar;
  force_path_style?: boolean;
  proxy_config?: RawProxy;
  max_retries?: number;
  max_retry_delay?: RawDuration;
  min_retry_delay?: RawDuration;
  metadata?: Record<string, Scalar>;
  tagging?: Scalar;
  content_disposition?: Scalar;
  aws_log_level?: Scalar;
}
export interface RawAzure { account_name?: Scalar; account_key?: Scalar; container_name?: Scalar; endpoint?: Scalar }
export interface RawGcp { credentials_json?: Scalar; bucket?: Scalar; proxy_config?: RawProxy; endpoint?: Scalar }
export interface RawAliOss { access_key?: Scalar; secret?: Scalar; region?: Scalar; endpoint?: Scalar; bucket?: Scalar }

export const PROVIDERS = ['s3', 'azure', 'gcp', 'alioss'] as const;
export interface RawProviders { s3?: RawS3; azure?: RawAzure; gcp?: RawGcp; alioss?: RawAliOss }
export interface RawStorage extends RawProviders { prefix?: Scalar; generate_presigned_url?: boolean }
export interface RawDebug extends RawStorage {
  enable_profiling?: boolean;
  /** Older Go spelling of `prefix`. */
  path_prefix?: Scalar;
}

export interface RawRedis {
  address?: Scalar;
  username?: Scalar;
  password?: Scalar;
  db?: number;
  use_tls?: boolean;
  tls?: {
    enabled?: boolean; insecure?: boolean; server_name?: Scalar;
    ca_cert_file?: Scalar; client_cert_file?: Scalar; client_key_file?: Scalar;
  };
  sentinel_master_name?: Scalar;
  sentinel_username?: Scalar;
  sentinel_password?: Scalar;
  sentinel_addresses?: Scalar[];
  cluster_addresses?: Scalar[];
  max_redirects?: number;
}

export interface RawCpuCost {
  max_cpu_utilization?: number;
  max_memory?: number;
  memory_cost?: number;
  room_composite_cpu_cost?: number;
  audio_room_composite_cpu_cost?: number;
  sdk_audio_room_composite_cpu_cost?: number;
  web_cpu_cost?: number;
  audio_web_cpu_cost?: number;
  participant_cpu_cost?: number;
  track_composite_cpu_cost?: number;
  track_cpu_cost?: number;
  max_pulse_clients?: number;
  cpu_kill_grace_sec?: number;
  cpu_capacity?: number;
}

export interface RawSessionLimits {
  file_output_max_duration?: RawDuration;
  file_output_max_size?: number;
  stream_output_max_duration?: RawDuration;
  segment_output_max_duration?: RawDuration;
  image_output_max_duration?: RawDuration;
}

export interface RawConfig extends RawProviders {
  api_key?: Scalar;
  api_secret?: Scalar;
  ws_url?: string;
  redis?: RawRedis;
  cluster_id?: Scalar;
  logging?: { level?: LogLevel; json?: boolean };
  log_level?: LogLevel;
  health_port?: number;
  template_port?: number;
  template_base?: Scalar;
  prometheus_port?: number;
  debug_handler_port?: number;
  enable_chrome_sandbox?: boolean;
  insecure?: boolean;
  chrome_path?: Scalar;
  chrome_flags?: Record<string, Scalar>;
  web_start_timeout?: RawDuration;
  disallow_local_storage?: boolean;
  io_create_timeout?: RawDuration;
  io_update_timeout?: RawDuration;
  io_update_retry_window?: RawDuration;
  subscribe_timeout?: RawDuration;
  drain_timeout?: RawDuration;
  tmp_max_age?: RawDuration;
  pulse_sink_reap_grace_sec?: number;
  s3_assume_role_key?: Scalar;
  s3_assume_role_secret?: Scalar;
  s3_assume_role_arn?: Scalar;
  s3_assume_role_external_id?: Scalar;
  debug_bind_address?: Scalar;
  http_bind_address?: Scalar;
  test_overrides?: { cpu_load?: number; hold_reservations?: boolean; twitch_ingest_url?: string; chrome_init_script?: string; rtp_loss_percent?: number };
  local_output_dir?: Scalar;
  tmp_dir?: Scalar;
  storage?: RawStorage;
  backup?: RawStorage;
  backup_storage?: string | RawStorage;
  cpu_cost?: RawCpuCost;
  session_limits?: RawSessionLimits;
  debug?: RawDebug;
  handler_pool?: { idle?: number; browser?: boolean };
  remux_tracks?: boolean;
}

const DURATION_UNIT_MS: Record<string, number> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};
// Go's time.ParseDuration grammar without the minus sign: no setting here may be negative.
const DURATION_RE = /^\+?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/;
const DURATION_PART_RE = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/** Milliseconds, or undefined when `value` is not a valid non-negative duration. */
export function parseDuration(value: RawDuration): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (!DURATION_RE.test(value)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of value.matchAll(DURATION_PART_RE)) ms += Number(amount) * DURATION_UNIT_MS[unit!]!;
  return ms;
}

const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];

// `x-message` replaces ajv's generic text for a failing value; `{value}` is the offending value.
const str = { type: ['string', 'number', 'boolean'], 'x-message': 'must be a string' };
const bool = { type: 'boolean' };
const int = { type: 'integer' };
const num = { type: 'number' };
const port = { type: 'integer', minimum: 0, maximum: 65535, 'x-message': 'must be an integer between 0 and 65535' };
const duration = {
  type: ['string', 'number'], pattern: DURATION_RE.source, minimum: 0,
  'x-message': 'invalid duration {value} (expected e.g. "90s", "1h30m" or a number of seconds)',
};
const strList = { type: 'array', items: str };
const logLevel = { enum: LOG_LEVELS };

const block = (properties: Record<string, SchemaObject>): SchemaObject =>
  ({ type: 'object', properties, additionalProperties: false });
/** Keys a Go egress config may carry that have no meaning here: accepted silently, whatever their value. */
const ignored = (...keys: string[]): Record<string, SchemaObject> => Object.fromEntries(keys.map((k) => [k, {}]));

const proxy = block({ url: str, username: str, password: str });
const providers = {
  s3: block({
    access_key: str, secret: str, session_token: str, assume_role_arn: str, assume_role_external_id: str,
    region: str, endpoint: str, bucket: str, force_path_style: bool, proxy_config: proxy,
    max_retries: int, max_retry_delay: duration, min_retry_delay: duration,
    metadata: { type: 'object', additionalProperties: str }, tagging: str, content_disposition: str,
    aws_log_level: str, sts_endpoint: str,
  }),
  azure: block({ account_name: str, account_key: str, container_name: str, endpoint: str }),
  gcp: block({ credentials_json: str, bucket: str, proxy_config: proxy, endpoint: str }),
  alioss: block({ access_key: str, secret: str, region: str, endpoint: str, bucket: str }),
};
const storage = block({ prefix: str, generate_presigned_url: bool, ...providers });

export const configSchema: SchemaObject = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  ...block({
    api_key: str,
    api_secret: str,
    ws_url: { type: 'string', pattern: '^(wss?|https?)://', 'x-message': 'must start with ws://, wss://, http:// or https://' },
    redis: block({
      address: str, username: str, password: str, db: int, use_tls: bool,
      tls: block({
        enabled: bool, insecure: bool, server_name: str, ca_cert_file: str, client_cert_file: str, client_key_file: str,
      }),
      sentinel_master_name: str, sentinel_username: str, sentinel_password: str, sentinel_addresses: strList,
      cluster_addresses: strList, max_redirects: { type: 'integer', minimum: 0, 'x-message': 'must be a whole number' },
      // Connection-pool tuning of go-redis; ioredis keeps one connection per role and reconnects by itself.
      ...ignored('dial_timeout', 'read_timeout', 'write_timeout', 'pool_timeout', 'pool_size'),
    }),
    cluster_id: str,
    logging: block({ level: logLevel, json: bool, ...ignored('sample', 'component_levels', 'pion_level') }),
    health_port: port,
    template_port: port,
    template_base: str,
    prometheus_port: port,
    debug_handler_port: port,
    enable_chrome_sandbox: bool,
    insecure: bool,
    chrome_path: str,
    chrome_flags: { type: 'object', additionalProperties: str },
    web_start_timeout: duration,
    disallow_local_storage: bool,
    io_create_timeout: duration,
    io_update_timeout: duration,
    io_update_retry_window: duration,
    subscribe_timeout: duration,
    drain_timeout: duration,
    tmp_max_age: duration,
    pulse_sink_reap_grace_sec: int,
    s3_assume_role_key: str,
    s3_assume_role_secret: str,
    s3_assume_role_arn: str,
    s3_assume_role_external_id: str,
    debug_bind_address: str,
    http_bind_address: str,
    test_overrides: block({
      cpu_load: { type: 'number', minimum: 0, maximum: 1, 'x-message': 'must be a load fraction between 0 and 1' },
      hold_reservations: bool,
      twitch_ingest_url: str,
      chrome_init_script: str,
      rtp_loss_percent: { type: 'number', minimum: 0, maximum: 50, 'x-message': 'must be a percentage between 0 and 50' },
      ...ignored('failure_injection_room', 'disconnect_injection_room'),
    }),
    local_output_dir: str,
    tmp_dir: str,
    storage,
    backup: storage,
    cpu_cost: block({
      max_cpu_utilization: num, max_memory: num, memory_cost: num,
      room_composite_cpu_cost: num, audio_room_composite_cpu_cost: num, sdk_audio_room_composite_cpu_cost: num,
      web_cpu_cost: num, audio_web_cpu_cost: num, participant_cpu_cost: num,
      track_composite_cpu_cost: num, track_cpu_cost: num, max_pulse_clients: int, cpu_kill_grace_sec: int, cpu_capacity: num,
      ...ignored('sdk_audio_room_composite_memory_cost', 'memory_source', 'memory_kill_grace_sec'),
    }),
    session_limits: block({
      file_output_max_duration: duration,
      file_output_max_size: { type: 'integer', minimum: 0, 'x-message': 'must be a whole number of bytes' },
      stream_output_max_duration: duration,
      segment_output_max_duration: duration,
      image_output_max_duration: duration,
    }),
    remux_tracks: bool,
    handler_pool: block({
      idle: { type: 'integer', minimum: 0, maximum: 8, 'x-message': 'must be a whole number of spare handlers, 0 to 8' },
      browser: bool,
    }),
    debug: block({
      enable_profiling: bool, prefix: str, path_prefix: str, generate_presigned_url: bool, ...providers,
      ...ignored('enable_track_logging', 'enable_stream_logging', 'enable_chrome_logging'),
    }),

    // Product-brief layout.
    ...providers,
    backup_storage: {
      if: { type: 'object' },
      then: storage,
      else: { type: 'string', 'x-message': 'must be a directory path or a storage block' },
    },
    log_level: logLevel,

    ...ignored('max_upload_queue', 'io_selection_timeout', 'io_workers', 'latency', 'latency_overrides',
      'video_encoder_threads', 'enable_one_shot_sender_report_sync', 'enable_sync_engine', 'audio_tempo_controller',
      'node_id', 'location'),
  }),
};

export const AJV_OPTIONS: Options = {
  allErrors: true,
  verbose: true, // exposes the failing value and its schema, for `x-message`
  allowUnionTypes: true,
  keywords: ['x-message'],
};

/**
 * dist/ carries this validator precompiled (bin/build, config/write-validator.ts): compiling it
 * costs 0.2–0.5 s of every start. Run from the sources, it is compiled here, and only then is ajv
 * loaded (about 60 modules).
 */
async function precompiled(): Promise<ValidateFunction | undefined> {
  if (!import.meta.url.endsWith('.js')) return undefined;
  const file = './config-validator.js';
  return ((await import(file).catch(() => undefined)) as { validate?: ValidateFunction } | undefined)?.validate;
}
const validate: ValidateFunction = (await precompiled()) ?? new (await import('ajv')).Ajv(AJV_OPTIONS).compile(configSchema);

/** "storage.s3.bucket" from "/storage/s3/bucket"; list indexes read "redis.cluster_addresses[1]". */
export function keyPath(instancePath: string, key?: string): string {
  const segments = instancePath.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (key !== undefined) segments.push(key);
  return segments.reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path ? `${path}.${s}` : s), '');
}

function describe(err: ErrorObject): string {
  const custom: unknown = err.parentSchema?.['x-message'];
  if (typeof custom === 'string') return custom.replace('{value}', JSON.stringify(err.data));
  if (err.keyword === 'enum') return `must be one of ${(err.params.allowedValues as string[]).join(', ')}`;
  return err.message ?? 'is invalid';
}

/**
 * Checks the shape of the parsed YAML. Unknown keys are reported apart: they are warnings, not errors.
 * When `problems` is empty, `raw` is a RawConfig.
 */
export function checkShape(raw: unknown): { problems: string[]; unknownKeys: string[] } {
  if (validate(raw)) return { problems: [], unknownKeys: [] };
  const problems = new Set<string>();
  const unknownKeys: string[] = [];
  for (const err of validate.errors ?? []) {
    if (err.keyword === 'additionalProperties') {
      unknownKeys.push(keyPath(err.instancePath, String(err.params.additionalProperty)));
    } else if (err.keyword !== 'if') { // an `if` error only repeats the failures found inside its branch
      problems.add(`${keyPath(err.instancePath)}: ${describe(err)}`);
    }
  }
  return { problems: [...problems], unknownKeys };
}
