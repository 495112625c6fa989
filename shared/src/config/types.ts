// The one typed config both YAML layouts (product brief and current Go egress) map onto.
// Durations are milliseconds; sizes are bytes.

/** `redis.tls` (livekit/protocol xtls.Config); file paths are read when the node connects. */
export interface RedisTlsConfig {
  /** Skips verifying the server's certificate and name. */
  insecure: boolean;
  serverName: string;
  caCertFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

/**
 * As livekit/protocol's redis.go: sentinel_addresses make it a sentinel client, else cluster_addresses
 * a cluster client, else `address` a single server. The optional keys are set only when configured.
 */
export interface RedisConfig {
  address: string;
  username: string;
  password: string;
  db: number;
  /** TLS with default verification; an enabled `tls` block wins over it. */
  useTls: boolean;
  tls?: RedisTlsConfig;
  sentinelMasterName: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
  sentinelAddresses: string[];
  clusterAddresses: string[];
  /** Cluster only; Go's default is 2. */
  maxRedirects?: number;
}

export interface S3Config {
  accessKey: string;
  secret: string;
  sessionToken: string;
  assumeRoleArn: string;
  assumeRoleExternalId: string;
  region: string;
  endpoint: string;
  bucket: string;
  forcePathStyle: boolean;
  proxy?: ProxyConfig;
  maxRetries: number;
  maxRetryDelayMs: number;
  minRetryDelayMs: number;
  metadata: Record<string, string>;
  tagging: string;
  contentDisposition: string;
  /**
   * STS endpoint for assume_role_arn (not a Go egress key): only for tests and private clouds.
   * Unset: the SDK's regional STS endpoint.
   */
  stsEndpoint?: string;
}
export interface ProxyConfig { url: string; username: string; password: string }
export interface AzureConfig {
  accountName: string;
  accountKey: string;
  containerName: string;
  /**
   * Blob service URL (not a Go egress key), e.g. Azurite's `http://127.0.0.1:10000/devstoreaccount1`.
   * Unset: `https://<account_name>.blob.core.windows.net`.
   */
  endpoint?: string;
}
export interface GcpConfig {
  credentialsJson: string;
  bucket: string;
  proxy?: ProxyConfig;
  /** Not in the Go egress: a custom GCS JSON-API endpoint (emulator, private endpoint), e.g. `http://127.0.0.1:4443`. */
  endpoint?: string;
}
export interface AliOssConfig { accessKey: string; secret: string; region: string; endpoint: string; bucket: string }

export interface S3AssumeRoleConfig {
  accessKey: string;
  secret: string;
  arn: string;
  externalId: string;
  /** STS endpoint for request targets that assume a role (not a Go egress key; tests, private clouds). */
  stsEndpoint?: string;
}

/** Exactly one of s3/azure/gcp/alioss is set, or none (local disk). */
export interface StorageConfig {
  prefix: string;
  generatePresignedUrl: boolean;
  /** Local directory, from the product brief's `backup_storage: <path>` form; no cloud block is set then. */
  localDir?: string;
  s3?: S3Config;
  azure?: AzureConfig;
  gcp?: GcpConfig;
  alioss?: AliOssConfig;
}

export interface CpuCostConfig {
  /** Cores this node may use (LIVEKIT_CPU_REQUEST or cpu_cost.cpu_capacity); default: the cgroup's CPU quota, else the machine's (supervisor/src/admission/resources.ts). */
  capacity: number;
  maxCpuUtilization: number;
  maxMemory: number;
  memoryCost: number;
  roomCompositeCpuCost: number;
  audioRoomCompositeCpuCost: number;
  sdkAudioRoomCompositeCpuCost: number;
  webCpuCost: number;
  audioWebCpuCost: number;
  participantCpuCost: number;
  trackCompositeCpuCost: number;
  trackCpuCost: number;
  maxPulseClients: number;
  cpuKillGraceSec: number;
}

export interface SessionLimits {
  fileOutputMaxDurationMs: number;
  fileOutputMaxSize: number;
  streamOutputMaxDurationMs: number;
  segmentOutputMaxDurationMs: number;
  imageOutputMaxDurationMs: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Config {
  apiKey: string;
  apiSecret: string;
  wsUrl: string;
  redis: RedisConfig;
  clusterId: string;
  logging: { level: LogLevel; json: boolean };
  healthPort: number;
  templatePort: number;
  templateBase: string;
  prometheusPort: number;
  debugHandlerPort: number;
  /** Interface the debug server listens on (`debug_bind_address`). Default: 127.0.0.1. */
  debugBindAddress?: string;
  /** Where health_port and prometheus_port listen. Default 0.0.0.0, as the Go egress. */
  httpBindAddress: string;
  enableChromeSandbox: boolean;
  insecure: boolean;
  /** The browser web sources run (not a Go egress key: its image has one Chrome). Default: Debian's /usr/bin/chromium. */
  chromePath: string;
  /** `chrome_flags`: appended after the reference's flags; `true` is a bare switch, `false` leaves it out. */
  chromeFlags: Record<string, string | number | boolean>;
  /**
   * How long a web source waits for its page's START_RECORDING before the egress ends ABORTED (not a
   * Go egress key: it waits for ever, holding Chrome and its CPU reservation).
   */
  webStartTimeoutMs: number;
  /** Where local-disk results land when a request's path is relative. Default: the process working directory. */
  localOutputDir: string;
  /** Scratch space; each egress writes under <tmpDir>/<egress_id>. */
  tmpDir: string;
  disallowLocalStorage: boolean;
  ioCreateTimeoutMs: number;
  ioUpdateTimeoutMs: number;
  /**
   * `io_update_retry_window` (ours; default 10 min, Go's unhealthy-IO shutdown delay): how long an
   * egress's UpdateEgress is retried without a success before that status is abandoned, loudly.
   */
  ioUpdateRetryWindowMs: number;
  /** How long an SDK egress waits for its named track / participant (Go: 30 s). */
  subscribeTimeoutMs: number;
  storage?: StorageConfig;
  backup?: StorageConfig;
  /**
   * Server-side AssumeRole defaults for request S3 targets (Go keys s3_assume_role_key, s3_assume_role_secret,
   * s3_assume_role_arn, s3_assume_role_external_id); see egress-behaviour §5.4.
   */
  s3AssumeRole?: S3AssumeRoleConfig;
  cpuCost: CpuCostConfig;
  sessionLimits: SessionLimits;
  debug: { enableProfiling: boolean; storage?: StorageConfig };
  /** SIGTERM drain: how long running jobs may take before they are stopped; 0 waits for ever. */
  drainTimeoutMs: number;
  /** Scratch of jobs already reported (a FAILED job's files, orphans) is removed at start once older than this; 0 keeps it. */
  tmpMaxAgeMs: number;
  /** A null sink of an egress that is not running is unloaded after this long (Go's default 30); negative: never. */
  pulseSinkReapGraceSec: number;
  /** Handler processes kept started and warm for the next jobs (handler_pool.idle); 0: each job forks its own. */
  handlerPoolIdle: number;
  /**
   * handler_pool.browser: on a node that serves web sources, each spare also starts a display, a null
   * sink and Chromium for the default 1280x720 page, which the next web job of that size and flags
   * takes instead of launching its own (source/web/warm.ts).
   */
  handlerPoolBrowser: boolean;
  /**
   * remux_tracks: a track egress to a file writes the track's RTP as it was published, with no decoding
   * (source/rtp/). Off by default for now: a track whose resolution changes mid-way keeps its frames'
   * sizes (WebM) or fails the muxer (MP4), where the decoding path scales every frame to the first one's.
   */
  remuxTracks: boolean;
  /**
   * Hooks for tests, like the Go egress's test_overrides. Never set in production. twitchIngestUrl:
   * where twitch:// looks up its ingest servers (a local fake in tests). chromeInitScript: a JS file
   * every page of a web job runs before its own scripts (the rig's loopback.js keeps WebRTC on
   * 127.0.0.1, where the rig's livekit-server is). rtpLossPercent: that share of the UDP datagrams a remuxing track egress receives is dropped, as a
   * lossy network would (this machine's kernel has no netem).
   */
  testOverrides: { cpuLoad?: number; holdReservations?: boolean; twitchIngestUrl?: string; chromeInitScript?: string; rtpLossPercent?: number };
}
