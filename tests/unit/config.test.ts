import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Config } from '@egress/shared/config/types.ts';
import { ConfigError, loadConfig } from '../../supervisor/src/config/load.ts';
import { parseDuration } from '../../supervisor/src/config/schema.ts';

const REQUIRED = `
api_key: key
api_secret: secret
ws_url: wss://lk.example.com
redis:
  address: redis:6379
`;
const NO_REDIS = REQUIRED.replace(/^redis:\n.*\n/m, '');
const NO_WS_URL = REQUIRED.replace(/^ws_url: .*\n/m, '');

const load = (body: string, env: NodeJS.ProcessEnv = {}) => loadConfig({ body, env });

/** The ConfigError thrown by loading `body`; fails the test when none is thrown. */
function problemOf(body: string | undefined, env: NodeJS.ProcessEnv = {}, file?: string): string {
  try {
    loadConfig({ body, file, env });
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const DEFAULTS: Config = {
  apiKey: 'key',
  apiSecret: 'secret',
  wsUrl: 'wss://lk.example.com',
  redis: {
    address: 'redis:6379', username: '', password: '', db: 0, useTls: false,
    sentinelMasterName: '', sentinelAddresses: [], clusterAddresses: [],
  },
  clusterId: '',
  logging: { level: 'info', json: false },
  healthPort: 0,
  templatePort: 7980,
  templateBase: 'http://localhost:7980/',
  prometheusPort: 0,
  debugHandlerPort: 0,
  enableChromeSandbox: false,
  insecure: false,
  chromePath: '/usr/bin/chromium',
  chromeFlags: {},
  webStartTimeoutMs: 60_000,
  localOutputDir: process.cwd(),
  tmpDir: path.join(os.tmpdir(), 'egress'),
  disallowLocalStorage: false,
  ioCreateTimeoutMs: 15_000,
  ioUpdateTimeoutMs: 30_000,
  ioUpdateRetryWindowMs: 600_000,
  subscribeTimeoutMs: 30_000,
  drainTimeoutMs: 0,
  tmpMaxAgeMs: 86_400_000,
  pulseSinkReapGraceSec: 30,
  handlerPoolIdle: 1,
  handlerPoolBrowser: true,
  remuxTracks: false,
  httpBindAddress: '0.0.0.0',
  testOverrides: {},
  cpuCost: {
    capacity: os.availableParallelism(),
    maxCpuUtilization: 0.8, maxMemory: 0, memoryCost: 0,
    roomCompositeCpuCost: 4, audioRoomCompositeCpuCost: 1, sdkAudioRoomCompositeCpuCost: 1,
    webCpuCost: 4, audioWebCpuCost: 1, participantCpuCost: 2, trackCompositeCpuCost: 1, trackCpuCost: 0.5,
    maxPulseClients: 60, cpuKillGraceSec: 30,
  },
  sessionLimits: {
    fileOutputMaxDurationMs: 0, fileOutputMaxSize: 0, streamOutputMaxDurationMs: 0,
    segmentOutputMaxDurationMs: 0, imageOutputMaxDurationMs: 0,
  },
  debug: { enableProfiling: false },
};

const S3_DEFAULTS = {
  accessKey: '', secret: '', sessionToken: '', assumeRoleArn: '', assumeRoleExternalId: '', region: '', endpoint: '',
  bucket: '', forcePathStyle: false, maxRetries: 3, maxRetryDelayMs: 5_000, minRetryDelayMs: 500, metadata: {},
  tagging: '', contentDisposition: '',
};

t.test('minimal current-layout config gets every default', async (t) => {
  t.strictSame(load(REQUIRED), { config: DEFAULTS, warnings: [] });
});

t.test('current layout maps onto the typed config', async (t) => {
  const { config, warnings } = load(`${REQUIRED}
  username: u
  password: 123456
  db: 2
  use_tls: true
  sentinel_master_name: m
  sentinel_addresses: [s1:26379, s2:26379]
cluster_id: eu
logging: { level: debug, json: true }
health_port: 8080
template_port: 8000
prometheus_port: 9090
debug_handler_port: 9091
enable_chrome_sandbox: true
insecure: true
chrome_path: /opt/chrome/chrome
chrome_flags: { disable-gpu: "", js-flags: --max-old-space-size=512, enable-logging: true }
web_start_timeout: 2m
disallow_local_storage: true
io_create_timeout: 20s
io_update_timeout: 1m
subscribe_timeout: 45
local_output_dir: /data/out
tmp_dir: /data/tmp
storage:
  prefix: rec/
  generate_presigned_url: true
  s3:
    bucket: b
    region: us-east-1
    force_path_style: true
    proxy_config: { url: "http://proxy:3128" }
    max_retries: 7
    max_retry_delay: 10s
    metadata: { team: media, n: 1 }
backup:
  gcp: { bucket: spare, credentials_json: "{}" }
debug:
  enable_profiling: true
  prefix: dbg/
  azure: { account_name: a, account_key: k, container_name: c }
`);
  t.strictSame(warnings, []);
  t.strictSame(config, {
    ...DEFAULTS,
    redis: {
      address: 'redis:6379', username: 'u', password: '123456', db: 2, useTls: true,
      sentinelMasterName: 'm', sentinelAddresses: ['s1:26379', 's2:26379'], clusterAddresses: [],
    },
    clusterId: 'eu',
    logging: { level: 'debug', json: true },
    healthPort: 8080,
    templatePort: 8000,
    templateBase: 'http://localhost:8000/',
    prometheusPort: 9090,
    debugHandlerPort: 9091,
    enableChromeSandbox: true,
    insecure: true,
    chromePath: '/opt/chrome/chrome',
    chromeFlags: { 'disable-gpu': '', 'js-flags': '--max-old-space-size=512', 'enable-logging': true },
    webStartTimeoutMs: 120_000,
    disallowLocalStorage: true,
    ioCreateTimeoutMs: 20_000,
    ioUpdateTimeoutMs: 60_000,
    subscribeTimeoutMs: 45_000,
    localOutputDir: '/data/out',
    tmpDir: '/data/tmp',
    storage: {
      prefix: 'rec/',
      generatePresignedUrl: true,
      s3: {
        ...S3_DEFAULTS, bucket: 'b', region: 'us-east-1', forcePathStyle: true,
        proxy: { url: 'http://proxy:3128', username: '', password: '' },
        maxRetries: 7, maxRetryDelayMs: 10_000, metadata: { team: 'media', n: '1' },
      },
    },
    backup: { prefix: '', generatePresignedUrl: false, gcp: { credentialsJson: '{}', bucket: 'spare' } },
    debug: {
      enableProfiling: true,
      storage: {
        prefix: 'dbg/', generatePresignedUrl: false,
        azure: { accountName: 'a', accountKey: 'k', containerName: 'c' },
      },
    },
  });
});

t.test('template_port 0 means 7980; template_base overrides the derived URL', async (t) => {
  t.equal(load(`${REQUIRED}template_port: 0\n`).config.templatePort, 7980);
  t.equal(load(`${REQUIRED}template_base: http://tpl:1/\n`).config.templateBase, 'http://tpl:1/');
});

t.test('product-brief layout maps onto the same fields', async (t) => {
  const { config, warnings } = load(`${REQUIRED}
log_level: warn
s3:
  access_key: AK
  secret: SK
  bucket: recordings
backup_storage: /var/egress/backup
debug:
  path_prefix: dbg/
  s3: { bucket: debug-bucket }
`);
  t.strictSame(warnings, []);
  t.strictSame(config.logging, { level: 'warn', json: false });
  t.strictSame(config.storage, {
    prefix: '', generatePresignedUrl: false, s3: { ...S3_DEFAULTS, accessKey: 'AK', secret: 'SK', bucket: 'recordings' },
  });
  t.strictSame(config.backup, { prefix: '', generatePresignedUrl: false, localDir: '/var/egress/backup' });
  t.strictSame(config.debug, {
    enableProfiling: false,
    storage: { prefix: 'dbg/', generatePresignedUrl: false, s3: { ...S3_DEFAULTS, bucket: 'debug-bucket' } },
  });
});

t.test('product-brief backup_storage may also be a storage block', async (t) => {
  const { config } = load(`${REQUIRED}backup_storage:\n  prefix: b/\n  alioss: { bucket: x, region: r }\n`);
  t.strictSame(config.backup, {
    prefix: 'b/', generatePresignedUrl: false,
    alioss: { accessKey: '', secret: '', region: 'r', endpoint: '', bucket: 'x' },
  });
});

t.test('keys from both layouts at once are an error naming both', async (t) => {
  const cases: [string, string, string][] = [
    ['storage and s3', 'storage: { prefix: a/ }\ns3: { bucket: b }\n',
      'config: s3: cannot be combined with storage (s3 is the older spelling of storage.s3)'],
    ['backup and backup_storage', 'backup: { prefix: a/ }\nbackup_storage: /tmp/b\n',
      'config: backup_storage: cannot be combined with backup (backup_storage is the older spelling of backup)'],
    ['logging.level and log_level', 'logging: { level: info }\nlog_level: debug\n',
      'config: log_level: cannot be combined with logging.level (log_level is the older spelling of logging.level)'],
  ];
  for (const [name, yaml, message] of cases) t.equal(problemOf(REQUIRED + yaml), message, name);
  // logging.json alongside log_level is not a clash: only the level has two spellings.
  t.strictSame(load(`${REQUIRED}logging: { json: true }\nlog_level: error\n`).config.logging, { level: 'error', json: true });
});

t.test('env fills api_key, api_secret and ws_url when the YAML lacks them', async (t) => {
  const env = { LIVEKIT_API_KEY: 'env-key', LIVEKIT_API_SECRET: 'env-secret', LIVEKIT_WS_URL: 'ws://env:7880' };
  const { config } = load('redis: { address: "r:1" }\n', env);
  t.strictSame([config.apiKey, config.apiSecret, config.wsUrl], ['env-key', 'env-secret', 'ws://env:7880']);

  const yamlWins = load(`${REQUIRED}`, env).config;
  t.strictSame([yamlWins.apiKey, yamlWins.apiSecret, yamlWins.wsUrl], ['key', 'secret', 'wss://lk.example.com']);

  t.equal(problemOf('redis: { address: "r:1" }\n', { ...env, LIVEKIT_WS_URL: 'localhost:7880' }),
    'config: ws_url: must start with ws://, wss://, http:// or https://', 'an env value is validated too');
});

t.test('config source precedence', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'egress-config-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'egress.yaml');
  writeFileSync(file, REQUIRED.replace('api_key: key', 'api_key: from-file'));
  const bodyYaml = REQUIRED.replace('api_key: key', 'api_key: from-body');

  const cases: [string, Parameters<typeof loadConfig>[0], string][] = [
    ['--config file', { file, env: {} }, 'from-file'],
    ['EGRESS_CONFIG_FILE', { env: { EGRESS_CONFIG_FILE: file } }, 'from-file'],
    ['--config-body beats file', { file, body: bodyYaml, env: {} }, 'from-body'],
    ['EGRESS_CONFIG_BODY beats --config file', { file, env: { EGRESS_CONFIG_BODY: bodyYaml } }, 'from-body'],
    ['empty EGRESS_CONFIG_BODY falls back to the file', { env: { EGRESS_CONFIG_BODY: '', EGRESS_CONFIG_FILE: file } }, 'from-file'],
  ];
  for (const [name, opts, apiKey] of cases) t.equal(loadConfig(opts).config.apiKey, apiKey, name);

  const missing = path.join(dir, 'nope.yaml');
  t.equal(problemOf(undefined, {}, missing),
    `could not read config file ${missing}: ENOENT: no such file or directory, open '${missing}'`);
});

t.test('missing config', async (t) => {
  t.equal(problemOf(undefined, {}), 'missing config: pass --config FILE, or set EGRESS_CONFIG_FILE or EGRESS_CONFIG_BODY');
  t.equal(problemOf('', { EGRESS_CONFIG_FILE: '' }),
    'missing config: pass --config FILE, or set EGRESS_CONFIG_FILE or EGRESS_CONFIG_BODY', 'empty values count as unset');
});

t.test('unparseable YAML', async (t) => {
  t.equal(problemOf('api_key: [\n').split('\n')[0], 'could not parse config: Flow sequence in block collection must be '
    + 'sufficiently indented and end with a ] at line 2, column 1:');
  t.equal(problemOf('api_key: a\napi_key: b\n').split('\n')[0],
    'could not parse config: Map keys must be unique at line 2, column 1:');
  t.equal(problemOf('- just\n- a list\n'), 'could not parse config: the top level must be a mapping of keys to values');
});

t.test('validation messages name the key path and the reason', async (t) => {
  const cases: [string, string, string][] = [
    ['port above range', REQUIRED + 'health_port: 70000\n', 'config: health_port: must be an integer between 0 and 65535'],
    ['port not a number', REQUIRED + 'prometheus_port: http\n', 'config: prometheus_port: must be an integer between 0 and 65535'],
    ['log level', REQUIRED + 'logging: { level: verbose }\n', 'config: logging.level: must be one of debug, info, warn, error'],
    ['brief log level', REQUIRED + 'log_level: trace\n', 'config: log_level: must be one of debug, info, warn, error'],
    ['duration', REQUIRED + 'session_limits: { stream_output_max_duration: 10 minutes }\n',
      'config: session_limits.stream_output_max_duration: invalid duration "10 minutes" (expected e.g. "90s", "1h30m" or a number of seconds)'],
    ['negative duration', REQUIRED + 'io_create_timeout: -5s\n',
      'config: io_create_timeout: invalid duration "-5s" (expected e.g. "90s", "1h30m" or a number of seconds)'],
    ['nested duration', REQUIRED + 'storage: { s3: { max_retry_delay: soon } }\n',
      'config: storage.s3.max_retry_delay: invalid duration "soon" (expected e.g. "90s", "1h30m" or a number of seconds)'],
    ['redis.db', `${NO_REDIS}redis: { address: "r:1", db: first }\n`, 'config: redis.db: must be integer'],
    ['redis.db fraction', `${NO_REDIS}redis: { address: "r:1", db: 1.5 }\n`, 'config: redis.db: must be integer'],
    ['boolean', REQUIRED + 'insecure: maybe\n', 'config: insecure: must be boolean'],
    ['string', REQUIRED + 'cluster_id: [a, b]\n', 'config: cluster_id: must be a string'],
    ['list item', `${NO_REDIS}redis: { address: "r:1", cluster_addresses: [a, {b: 1}] }\n`,
      'config: redis.cluster_addresses[1]: must be a string'],
    ['size', REQUIRED + 'session_limits: { file_output_max_size: 1.5GB }\n',
      'config: session_limits.file_output_max_size: must be a whole number of bytes'],
    ['ws_url scheme', `${NO_WS_URL}ws_url: lk.example.com\n`, 'config: ws_url: must start with ws://, wss://, http:// or https://'],
    ['backup_storage type', REQUIRED + 'backup_storage: [a]\n', 'config: backup_storage: must be a directory path or a storage block'],
    ['two providers', REQUIRED + 'storage:\n  s3: { bucket: a }\n  gcp: { bucket: b }\n',
      'config: storage: only one of s3, azure, gcp, alioss may be set, got s3, gcp'],
    ['two providers, brief layout', REQUIRED + 'azure: { account_name: a }\nalioss: { bucket: b }\n',
      'config: (top level): only one of s3, azure, gcp, alioss may be set, got azure, alioss'],
    ['two providers in backup', REQUIRED + 'backup: { s3: {}, azure: {} }\n',
      'config: backup: only one of s3, azure, gcp, alioss may be set, got s3, azure'],
    ['two providers in debug', REQUIRED + 'debug: { gcp: {}, alioss: {} }\n',
      'config: debug: only one of s3, azure, gcp, alioss may be set, got gcp, alioss'],
  ];
  for (const [name, body, message] of cases) t.equal(problemOf(body), message, name);
});

t.test('required keys are named, with the env var that could supply them', async (t) => {
  t.equal(problemOf('log_level: info\n'), [
    'config: api_key: is required (or set LIVEKIT_API_KEY)',
    'config: api_secret: is required (or set LIVEKIT_API_SECRET)',
    'config: ws_url: is required (or set LIVEKIT_WS_URL)',
    'config: redis.address: is required (or redis.sentinel_addresses, or redis.cluster_addresses)',
  ].join('\n'));
  t.equal(problemOf(REQUIRED.replace('api_secret: secret', 'api_secret: ""'), { LIVEKIT_API_SECRET: 'env' }),
    'config: api_secret: is required (or set LIVEKIT_API_SECRET)', 'an empty YAML value is not replaced by env');
});

t.test('several problems come back as one error, one per line', async (t) => {
  const err = (() => {
    try {
      load('health_port: -1\nlogging: { level: loud }\nredis: { db: x }\n');
    } catch (e) {
      return e as ConfigError;
    }
  })();
  t.ok(err instanceof ConfigError);
  t.strictSame(err?.problems, [
    'config: redis.db: must be integer',
    'config: logging.level: must be one of debug, info, warn, error',
    'config: health_port: must be an integer between 0 and 65535',
    'config: api_key: is required (or set LIVEKIT_API_KEY)',
    'config: api_secret: is required (or set LIVEKIT_API_SECRET)',
    'config: ws_url: is required (or set LIVEKIT_WS_URL)',
    'config: redis.address: is required (or redis.sentinel_addresses, or redis.cluster_addresses)',
  ]);
  t.equal(err?.message, err?.problems.join('\n'));
});

t.test('unknown keys are warnings, not errors', async (t) => {
  const { config, warnings } = load(`${REQUIRED}
foo:
  bar: 1
storage:
  s3: { bucket: b, colour: blue, aws_log_level: LogDebug }
cpu_cost: { turbo: true }
`);
  t.equal(config.storage?.s3?.bucket, 'b');
  t.strictSame(warnings, [
    'config: unknown key "foo" ignored',
    'config: unknown key "storage.s3.colour" ignored',
    'config: unknown key "cpu_cost.turbo" ignored',
    'config: key "storage.s3.aws_log_level" ignored: AWS SDK logging is not configurable here',
  ]);
});

t.test('a Go egress config with Go-only keys loads without warnings', async (t) => {
  const { warnings } = load(`${REQUIRED}
  use_tls: false
  sentinel_username: su
  sentinel_password: sp
  dial_timeout: 5000
  pool_size: 10
  tls: { enabled: true }
node_id: NE_x
location: eu
logging:
  level: info
  sample: true
  component_levels: { pion: warn }
  pion_level: error
max_upload_queue: 60
io_selection_timeout: 30s
io_workers: 5
s3_assume_role_key: k
s3_assume_role_secret: s
s3_assume_role_arn: arn
s3_assume_role_external_id: ext
latency: { jitter_buffer_latency: 2s }
latency_overrides: {}
video_encoder_threads: 4
enable_one_shot_sender_report_sync: true
enable_sync_engine: true
audio_tempo_controller: { enabled: true }
test_overrides: {}
pulse_sink_reap_grace_sec: 10
cpu_cost:
  sdk_audio_room_composite_memory_cost: 1
  memory_source: cgroup
  memory_kill_grace_sec: 10
debug:
  enable_track_logging: true
  enable_stream_logging: true
  enable_chrome_logging: true
`);
  t.strictSame(warnings, []);
});

t.test('session_limits durations are parsed into milliseconds', async (t) => {
  const { config } = load(`${REQUIRED}
session_limits:
  file_output_max_duration: 1h
  file_output_max_size: 1073741824
  stream_output_max_duration: 90m
  segment_output_max_duration: 1h30m
  image_output_max_duration: 2750ms
`);
  t.strictSame(config.sessionLimits, {
    fileOutputMaxDurationMs: 3_600_000,
    fileOutputMaxSize: 1_073_741_824,
    streamOutputMaxDurationMs: 5_400_000,
    segmentOutputMaxDurationMs: 5_400_000,
    imageOutputMaxDurationMs: 2_750,
  });
});

t.test('parseDuration follows Go syntax; numbers are seconds', async (t) => {
  const cases: [string | number, number | undefined][] = [
    ['5s', 5_000], ['1h30m', 5_400_000], ['1.5h', 5_400_000], ['2750ms', 2_750], ['0', 0], ['500us', 0.5],
    [90, 90_000], [0.25, 250],
    ['', undefined], ['5', undefined], ['-1s', undefined], ['1d', undefined], ['1 h', undefined], [-3, undefined],
  ];
  for (const [input, ms] of cases) t.equal(parseDuration(input), ms, JSON.stringify(input));
});

t.test('cpu_cost: Go defaults, and non-positive values fall back to them', async (t) => {
  const cpu = (yaml: string) => load(`${REQUIRED}cpu_cost:\n${yaml}`).config.cpuCost;
  t.strictSame(cpu('  {}\n'), DEFAULTS.cpuCost);

  for (const [value, expected] of [[0.9, 0.9], [1, 1], [0, 0.8], [-0.5, 0.8], [1.5, 0.8]] as const) {
    t.equal(cpu(`  max_cpu_utilization: ${value}\n`).maxCpuUtilization, expected, `max_cpu_utilization ${value}`);
  }
  const custom = cpu('  audio_room_composite_cpu_cost: 1.5\n  room_composite_cpu_cost: 0\n  cpu_kill_grace_sec: -1\n  max_memory: 8\n');
  t.equal(custom.sdkAudioRoomCompositeCpuCost, 1.5, 'sdk audio cost follows audio_room_composite_cpu_cost');
  t.equal(custom.roomCompositeCpuCost, 4);
  t.equal(custom.cpuKillGraceSec, 30);
  t.equal(custom.maxMemory, 8);
  t.equal(cpu('  sdk_audio_room_composite_cpu_cost: 3\n').sdkAudioRoomCompositeCpuCost, 3);
});

t.test('config.example.yaml loads cleanly', async (t) => {
  const file = path.join(import.meta.dirname, '../../config.example.yaml');
  const { config, warnings } = loadConfig({ file, env: {} });
  t.strictSame(warnings, []);
  t.equal(config.templatePort, 7980);
});

t.test('the validator bin/build precompiles answers exactly as the one compiled at run time', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'config-validator-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'config-validator.mjs');
  const { execa } = await import('execa');
  await execa(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, '../../supervisor/src/config/write-validator.ts'), out]);
  const { validate } = (await import(out)) as { validate: import('ajv').ValidateFunction };
  const { Ajv } = await import('ajv');
  const { AJV_OPTIONS, configSchema } = await import('../../supervisor/src/config/schema.ts');
  const compiled = new Ajv(AJV_OPTIONS).compile(configSchema);
  const cases: unknown[] = [
    { api_key: 'k', api_secret: 's', ws_url: 'ws://x', redis: { address: 'a:1' } },
    { api_key: 'k', health_port: 70000, drain_timeout: '5 minutes', cpu_cost: { cpu_capacity: 'two' }, nonsense: 1 },
    { session_limits: { file_output_max_duration: '1h30m', stream_output_max_duration: -3 }, handler_pool: { idle: 9 }, log_level: 'loud' },
    { backup_storage: 42, s3: { bucket: ['x'] }, redis: { cluster_addresses: ['a', 7] } },
  ];
  for (const [i, c] of cases.entries()) {
    const a = validate(c);
    const b = compiled(c);
    t.equal(a, b, `case ${i}: same verdict`);
    const strip = (errs: typeof compiled.errors) => (errs ?? []).map((e) => ({ path: e.instancePath, keyword: e.keyword, params: e.params, message: e.message, xMessage: e.parentSchema?.['x-message'] }));
    t.same(strip(validate.errors), strip(compiled.errors), `case ${i}: same errors, with their x-message`);
  }
});
