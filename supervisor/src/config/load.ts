import { accessSync, constants, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type {
  AliOssConfig, AzureConfig, Config, CpuCostConfig, GcpConfig, ProxyConfig, S3Config, SessionLimits, StorageConfig,
} from '@egress/shared/config/types.ts';
import { configSource, ENV_FALLBACKS, withEnvFallbacks } from './env.ts';
import {
  checkShape, parseDuration, PROVIDERS,
  type RawAliOss, type RawAzure, type RawConfig, type RawCpuCost, type RawDuration, type RawGcp, type RawProxy, type RawRedis,
  type RawS3, type RawSessionLimits, type RawStorage, type Scalar,
} from './schema.ts';

/** Every problem found in the config, one per line. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(...problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const DEFAULT_TEMPLATE_PORT = 7980;

export function loadConfig(opts: { file?: string; body?: string; env?: NodeJS.ProcessEnv }): {
  config: Config;
  warnings: string[];
} {
  const env = opts.env ?? process.env;
  const raw = withEnvFallbacks(parseYaml(readSource(opts, env)), env);

  const shape = checkShape(raw);
  const warnings = shape.unknownKeys.map((key) => `config: unknown key "${key}" ignored`);
  const problems = [...shape.problems, ...checkRelations(raw as RawConfig)];
  if (problems.length > 0) throw new ConfigError(...problems.map((p) => `config: ${p}`));

  return { config: toConfig(raw as RawConfig, warnings, env), warnings };
}

function readSource(opts: { file?: string; body?: string }, env: NodeJS.ProcessEnv): string {
  const source = configSource(opts, env);
  if (!source) throw new ConfigError('missing config: pass --config FILE, or set EGRESS_CONFIG_FILE or EGRESS_CONFIG_BODY');
  if (source.kind === 'body') return source.text;
  try {
    return readFileSync(source.path, 'utf8');
  } catch (err) {
    throw new ConfigError(`could not read config file ${source.path}: ${(err as Error).message}`);
  }
}

function parseYaml(text: string): Record<string, unknown> {
  // Merge keys (`<<: *base`) because Go's yaml.v3 honours them.
  const doc = parseDocument(text, { merge: true });
  const [first] = doc.errors;
  if (first) throw new ConfigError(`could not parse config: ${first.message.trimEnd()}`);
  let js: unknown;
  try {
    js = doc.toJS();
  } catch (err) {
    // Some faults only show when the document is resolved: a merge of a non-mapping, an alias bomb.
    throw new ConfigError(`could not parse config: ${(err as Error).message}`);
  }
  const value: unknown = dropNulls(js);
  if (value === undefined) return {}; // an empty file: everything comes from the environment
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('could not parse config: the top level must be a mapping of keys to values');
  }
  return value as Record<string, unknown>;
}

/** `key:` with no value leaves the default in place, as in Go. */
function dropNulls(value: unknown): unknown {
  if (value === null) return undefined;
  if (Array.isArray(value)) return value.map(dropNulls);
  if (typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).flatMap(([k, v]) => (v === null ? [] : [[k, dropNulls(v)]])),
  );
}

/** Checks between keys. Runs even when some values have the wrong type, so that every problem is reported at once. */
function checkRelations(raw: RawConfig): string[] {
  const problems: string[] = [];
  const clash = (older: string, current: string, olderSpellingOf = current) =>
    problems.push(`${older}: cannot be combined with ${current} (${older} is the older spelling of ${olderSpellingOf})`);

  for (const p of PROVIDERS) if (raw.storage && raw[p]) clash(p, 'storage', `storage.${p}`);
  if (raw.backup && raw.backup_storage !== undefined) clash('backup_storage', 'backup');
  if (raw.log_level && raw.logging?.level) clash('log_level', 'logging.level');
  if (raw.debug?.path_prefix !== undefined && raw.debug.prefix !== undefined) clash('debug.path_prefix', 'debug.prefix');

  const oneProvider = (block: RawStorage | undefined, name: string) => {
    const set = PROVIDERS.filter((p) => block?.[p]);
    if (set.length > 1) problems.push(`${name}: only one of ${PROVIDERS.join(', ')} may be set, got ${set.join(', ')}`);
  };
  oneProvider(raw.storage, 'storage');
  oneProvider(raw, '(top level)');
  oneProvider(raw.backup, 'backup');
  if (typeof raw.backup_storage === 'object') oneProvider(raw.backup_storage, 'backup_storage');
  oneProvider(raw.debug, 'debug');

  for (const [key, name] of Object.entries(ENV_FALLBACKS)) {
    if (!raw[key as keyof typeof ENV_FALLBACKS]) problems.push(`${key}: is required (or set ${name})`);
  }
  problems.push(...checkRedis(raw.redis ?? {}));
  return problems;
}

/** The Redis modes (single, sentinel, cluster) and TLS files: a node that cannot use them refuses to start. */
function checkRedis(redis: RawRedis): string[] {
  const problems: string[] = [];
  const sentinels = Array.isArray(redis.sentinel_addresses) && redis.sentinel_addresses.length > 0;
  const cluster = Array.isArray(redis.cluster_addresses) && redis.cluster_addresses.length > 0;
  if (!redis.address && !sentinels && !cluster) problems.push('redis.address: is required (or redis.sentinel_addresses, or redis.cluster_addresses)');
  if (sentinels && !redis.sentinel_master_name) problems.push('redis.sentinel_master_name: is required with redis.sentinel_addresses');
  if (!sentinels && redis.sentinel_master_name) problems.push('redis.sentinel_master_name: needs redis.sentinel_addresses');
  if (sentinels && cluster) problems.push('redis.cluster_addresses: cannot be combined with redis.sentinel_addresses');
  if (cluster && redis.db) problems.push('redis.db: must be 0 with redis.cluster_addresses (a cluster has one database)');
  const tls = redis.tls;
  if (tls?.enabled) {
    if (!tls.client_cert_file !== !tls.client_key_file) problems.push('redis.tls: client_cert_file and client_key_file go together');
    for (const key of ['ca_cert_file', 'client_cert_file', 'client_key_file'] as const) {
      const file = tls[key];
      if (file === undefined || file === '') continue;
      try {
        accessSync(String(file), constants.R_OK);
      } catch (err) {
        problems.push(`redis.tls.${key}: cannot read ${String(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
  }
  return problems;
}

function toConfig(raw: RawConfig, warnings: string[], env: NodeJS.ProcessEnv): Config {
  const templatePort = raw.template_port || DEFAULT_TEMPLATE_PORT;
  const debug = raw.debug ?? {};
  const debugStorage: RawStorage = { ...debug, prefix: debug.prefix ?? debug.path_prefix };
  const redis = raw.redis ?? {};

  return compact({
    apiKey: text(raw.api_key),
    apiSecret: text(raw.api_secret),
    wsUrl: text(raw.ws_url),
    redis: {
      address: text(redis.address),
      username: text(redis.username),
      password: text(redis.password),
      db: redis.db ?? 0,
      useTls: redis.use_tls ?? false,
      sentinelMasterName: text(redis.sentinel_master_name),
      sentinelAddresses: (redis.sentinel_addresses ?? []).map(String),
      clusterAddresses: (redis.cluster_addresses ?? []).map(String),
      ...(redis.tls?.enabled && {
        tls: {
          insecure: redis.tls.insecure ?? false,
          serverName: text(redis.tls.server_name),
          caCertFile: text(redis.tls.ca_cert_file),
          clientCertFile: text(redis.tls.client_cert_file),
          clientKeyFile: text(redis.tls.client_key_file),
        },
      }),
      ...(redis.sentinel_username !== undefined && { sentinelUsername: text(redis.sentinel_username) }),
      ...(redis.sentinel_password !== undefined && { sentinelPassword: text(redis.sentinel_password) }),
      ...(redis.max_redirects !== undefined && { maxRedirects: redis.max_redirects }),
    },
    clusterId: text(raw.cluster_id),
    logging: { level: raw.log_level ?? raw.logging?.level ?? 'info', json: raw.logging?.json ?? false },
    healthPort: raw.health_port ?? 0,
    templatePort,
    templateBase: text(raw.template_base) || `http://localhost:${templatePort}/`,
    prometheusPort: raw.prometheus_port ?? 0,
    debugHandlerPort: raw.debug_handler_port ?? 0,
    enableChromeSandbox: raw.enable_chrome_sandbox ?? false,
    insecure: raw.insecure ?? false,
    chromePath: text(raw.chrome_path) || '/usr/bin/chromium',
    chromeFlags: raw.chrome_flags ?? {},
    webStartTimeoutMs: positive(ms(raw.web_start_timeout), 60_000),
    // Resolved now: handlers may run with another working directory.
    localOutputDir: path.resolve(text(raw.local_output_dir) || process.cwd()),
    tmpDir: path.resolve(text(raw.tmp_dir) || path.join(os.tmpdir(), 'egress')),
    disallowLocalStorage: raw.disallow_local_storage ?? false,
    ioCreateTimeoutMs: positive(ms(raw.io_create_timeout), 15_000),
    ioUpdateTimeoutMs: positive(ms(raw.io_update_timeout), 30_000),
    ioUpdateRetryWindowMs: positive(ms(raw.io_update_retry_window), 600_000),
    subscribeTimeoutMs: positive(ms(raw.subscribe_timeout), 30_000),
    drainTimeoutMs: ms(raw.drain_timeout) ?? 0,
    tmpMaxAgeMs: ms(raw.tmp_max_age) ?? 86_400_000,
    pulseSinkReapGraceSec: raw.pulse_sink_reap_grace_sec ?? 30,
    handlerPoolIdle: raw.handler_pool?.idle ?? 1,
    handlerPoolBrowser: raw.handler_pool?.browser ?? true,
    remuxTracks: raw.remux_tracks ?? false,
    ...(raw.s3_assume_role_key || raw.s3_assume_role_arn
      ? {
          s3AssumeRole: {
            accessKey: text(raw.s3_assume_role_key),
            secret: text(raw.s3_assume_role_secret),
            arn: text(raw.s3_assume_role_arn),
            externalId: text(raw.s3_assume_role_external_id),
          },
        }
      : {}),
    httpBindAddress: text(raw.http_bind_address) || '0.0.0.0',
    ...(raw.debug_bind_address !== undefined && { debugBindAddress: text(raw.debug_bind_address) }),
    testOverrides: compact({
      cpuLoad: raw.test_overrides?.cpu_load,
      holdReservations: raw.test_overrides?.hold_reservations,
      twitchIngestUrl: raw.test_overrides?.twitch_ingest_url,
      chromeInitScript: raw.test_overrides?.chrome_init_script,
      rtpLossPercent: raw.test_overrides?.rtp_loss_percent,
    }),
    storage: raw.storage
      ? toStorage(raw.storage, 'storage', warnings)
      : PROVIDERS.some((p) => raw[p]) ? toStorage(raw, '', warnings) : undefined,
    backup: toBackup(raw, warnings),
    cpuCost: toCpuCost(raw.cpu_cost ?? {}, Number(env.LIVEKIT_CPU_REQUEST) || undefined),
    sessionLimits: toSessionLimits(raw.session_limits ?? {}),
    debug: compact({
      enableProfiling: debug.enable_profiling ?? false,
      storage: hasStorageKeys(debugStorage) ? toStorage(debugStorage, 'debug', warnings) : undefined,
    }),
  });
}

function toBackup(raw: RawConfig, warnings: string[]): StorageConfig | undefined {
  if (raw.backup) return toStorage(raw.backup, 'backup', warnings);
  const b = raw.backup_storage;
  if (typeof b === 'object') return toStorage(b, 'backup_storage', warnings);
  // The product brief's backup_storage is a local directory for uploads that failed.
  return b ? { prefix: '', generatePresignedUrl: false, localDir: b } : undefined;
}

function hasStorageKeys(block: RawStorage): boolean {
  return block.prefix !== undefined || block.generate_presigned_url !== undefined || PROVIDERS.some((p) => block[p]);
}

function toStorage(block: RawStorage, at: string, warnings: string[]): StorageConfig {
  return compact({
    prefix: text(block.prefix),
    generatePresignedUrl: block.generate_presigned_url ?? false,
    s3: block.s3 && toS3(block.s3, join(at, 's3'), warnings),
    azure: block.azure && toAzure(block.azure),
    gcp: block.gcp && toGcp(block.gcp),
    alioss: block.alioss && toAliOss(block.alioss),
  });
}

function toS3(s3: RawS3, at: string, warnings: string[]): S3Config {
  if (s3.aws_log_level !== undefined) {
    warnings.push(`config: key "${at}.aws_log_level" ignored: AWS SDK logging is not configurable here`);
  }
  return compact({
    accessKey: text(s3.access_key),
    secret: text(s3.secret),
    sessionToken: text(s3.session_token),
    assumeRoleArn: text(s3.assume_role_arn),
    assumeRoleExternalId: text(s3.assume_role_external_id),
    region: text(s3.region),
    endpoint: text(s3.endpoint),
    bucket: text(s3.bucket),
    forcePathStyle: s3.force_path_style ?? false,
    proxy: s3.proxy_config && toProxy(s3.proxy_config),
    maxRetries: positive(s3.max_retries, 3),
    maxRetryDelayMs: positive(ms(s3.max_retry_delay), 5_000),
    minRetryDelayMs: positive(ms(s3.min_retry_delay), 500),
    metadata: Object.fromEntries(Object.entries(s3.metadata ?? {}).map(([k, v]) => [k, String(v)])),
    tagging: text(s3.tagging),
    contentDisposition: text(s3.content_disposition),
    stsEndpoint: s3.sts_endpoint === undefined ? undefined : text(s3.sts_endpoint),
  });
}

const toProxy = (p: RawProxy): ProxyConfig => ({ url: text(p.url), username: text(p.username), password: text(p.password) });

const toAzure = (a: RawAzure): AzureConfig => compact({
  accountName: text(a.account_name), accountKey: text(a.account_key), containerName: text(a.container_name),
  endpoint: a.endpoint === undefined ? undefined : text(a.endpoint),
});

const toGcp = (g: RawGcp): GcpConfig => compact({
  credentialsJson: text(g.credentials_json), bucket: text(g.bucket), proxy: g.proxy_config && toProxy(g.proxy_config),
  endpoint: g.endpoint === undefined ? undefined : text(g.endpoint),
});

const toAliOss = (a: RawAliOss): AliOssConfig => ({
  accessKey: text(a.access_key), secret: text(a.secret), region: text(a.region),
  endpoint: text(a.endpoint), bucket: text(a.bucket),
});

// Go replaces any cost that is not positive with its default, so a zero never makes a job free.
/** Capacity: LIVEKIT_CPU_REQUEST wins (as in the Go egress), then cpu_cost.cpu_capacity, then the machine. */
function toCpuCost(c: RawCpuCost, cpuRequest: number | undefined): CpuCostConfig {
  const utilization = c.max_cpu_utilization;
  const audioRoomComposite = positive(c.audio_room_composite_cpu_cost, 1);
  return {
    capacity: cpuRequest ?? positive(c.cpu_capacity, os.availableParallelism()),
    maxCpuUtilization: utilization !== undefined && utilization > 0 && utilization <= 1 ? utilization : 0.8,
    maxMemory: c.max_memory ?? 0,
    memoryCost: c.memory_cost ?? 0,
    roomCompositeCpuCost: positive(c.room_composite_cpu_cost, 4),
    audioRoomCompositeCpuCost: audioRoomComposite,
    sdkAudioRoomCompositeCpuCost: positive(c.sdk_audio_room_composite_cpu_cost, audioRoomComposite),
    webCpuCost: positive(c.web_cpu_cost, 4),
    audioWebCpuCost: positive(c.audio_web_cpu_cost, 1),
    participantCpuCost: positive(c.participant_cpu_cost, 2),
    trackCompositeCpuCost: positive(c.track_composite_cpu_cost, 1),
    trackCpuCost: positive(c.track_cpu_cost, 0.5),
    maxPulseClients: positive(c.max_pulse_clients, 60),
    cpuKillGraceSec: positive(c.cpu_kill_grace_sec, 30),
  };
}

/** Zero means no limit. */
const toSessionLimits = (s: RawSessionLimits): SessionLimits => ({
  fileOutputMaxDurationMs: ms(s.file_output_max_duration) ?? 0,
  fileOutputMaxSize: s.file_output_max_size ?? 0,
  streamOutputMaxDurationMs: ms(s.stream_output_max_duration) ?? 0,
  segmentOutputMaxDurationMs: ms(s.segment_output_max_duration) ?? 0,
  imageOutputMaxDurationMs: ms(s.image_output_max_duration) ?? 0,
});

/** Leaves optional fields out rather than present-but-undefined, so configs compare and print cleanly. */
const compact = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
const text = (v: Scalar | undefined): string => (v === undefined ? '' : String(v));
const join = (at: string, key: string): string => (at ? `${at}.${key}` : key);
/** The schema has already rejected bad durations. */
const ms = (v: RawDuration | undefined): number | undefined => (v === undefined ? undefined : parseDuration(v));
/** As in Go, zero (or unset) means "use the default". */
const positive = (v: number | undefined, fallback: number): number => (v !== undefined && v > 0 ? v : fallback);
