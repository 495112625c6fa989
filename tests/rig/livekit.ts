import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort, freeUdpPort } from './ports.ts';
import { makeTmpDir, spawnService, waitReady, type Service } from './process.ts';

export const LIVEKIT_SERVER_BIN = fileURLToPath(new URL('../../.cache/bin/server', import.meta.url));

export const DEFAULT_API_KEY = 'devkey';
// livekit-server-sdk and the server warn about secrets shorter than 32 characters
export const DEFAULT_API_SECRET = 'devsecret-devsecret-devsecret-devsecret';

export interface LiveKitOptions {
  /** host:port of the redis that egress will share */
  redisAddress: string;
  webhookUrl?: string;
  apiKey?: string;
  apiSecret?: string;
}

export interface LiveKitInstance {
  wsUrl: string;
  httpUrl: string;
  apiKey: string;
  apiSecret: string;
  configPath: string;
  logPath: string;
  stop(): Promise<void>;
}

/**
 * Config for a single-node server reachable only through 127.0.0.1. Keys follow
 * livekit-server v1.13.5 pkg/config/config.go (the server parses in strict mode and
 * refuses unknown keys).
 */
export function liveKitConfig(p: {
  port: number;
  udpPort: number;
  redisAddress: string;
  apiKey: string;
  apiSecret: string;
  webhookUrl?: string | undefined;
}): Record<string, unknown> {
  return {
    port: p.port,
    bind_addresses: ['127.0.0.1'],
    rtc: {
      udp_port: p.udpPort,
      // The ICE/TCP listener ignores bind_addresses and would listen on all interfaces.
      tcp_port: 0,
      allow_tcp_fallback: false,
      node_ip: '127.0.0.1',
      use_external_ip: false,
      enable_loopback_candidate: true,
      ips: { includes: ['127.0.0.1/32'] },
      // Without STUN servers configured the server hands clients Twilio's and Google's;
      // nothing listens here, which is fine for loopback-only ICE.
      stun_servers: ['127.0.0.1:3478'],
    },
    turn: { enabled: false },
    // Tests mute and unmute publishers the way an admin does (RoomService.MutePublishedTrack).
    room: { enable_remote_unmute: true },
    redis: { address: p.redisAddress },
    keys: { [p.apiKey]: p.apiSecret },
    logging: { level: 'info' },
    ...(p.webhookUrl ? { webhook: { api_key: p.apiKey, urls: [p.webhookUrl] } } : {}),
  };
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  return res.status === 200;
}

const START_ATTEMPTS = 3;

/** Starts livekit-server (.cache/bin/server, built by tests/rig/setup.sh) on free ports. */
export async function startLiveKit(opts: LiveKitOptions): Promise<LiveKitInstance> {
  if (!existsSync(LIVEKIT_SERVER_BIN)) {
    throw new Error(`livekit-server not found at ${LIVEKIT_SERVER_BIN}: run tests/rig/setup.sh (npm run setup)`);
  }
  const apiKey = opts.apiKey ?? DEFAULT_API_KEY;
  const apiSecret = opts.apiSecret ?? DEFAULT_API_SECRET;

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const udpPort = await freeUdpPort();
    const tmpDir = makeTmpDir('livekit');
    const configPath = join(tmpDir, 'livekit.yaml');
    writeFileSync(
      configPath,
      stringify(liveKitConfig({ port, udpPort, redisAddress: opts.redisAddress, apiKey, apiSecret, webhookUrl: opts.webhookUrl })),
    );

    const service: Service = spawnService('livekit-server', LIVEKIT_SERVER_BIN, ['--config', configPath], {
      tmpDir,
    });
    const httpUrl = `http://127.0.0.1:${port}`;
    try {
      await waitReady(service, () => httpOk(`${httpUrl}/`), 30_000);
    } catch (err) {
      // free ports are picked before the server binds them, so another process may win the race
      const retry = attempt < START_ATTEMPTS && /address already in use/.test(service.logTail(200));
      await service.stop({ keepTmp: !retry });
      if (retry) continue;
      throw err;
    }
    return {
      wsUrl: `ws://127.0.0.1:${port}`,
      httpUrl,
      apiKey,
      apiSecret,
      configPath,
      logPath: service.logPath,
      stop: () => service.stop(),
    };
  }
}
