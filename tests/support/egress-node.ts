// Starts a real `egress serve` process for a suite, pointed at a deployment's Redis and livekit-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, createWriteStream, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { Deployment } from '../rig/deployment.ts';
import { freePort } from '../rig/ports.ts';

const EGRESS_BIN = fileURLToPath(new URL('../../bin/egress', import.meta.url));

export interface EgressNode {
  process: ChildProcess;
  outputDir: string;
  /** Scratch space: one directory per egress while it runs. */
  tmpDir: string;
  logPath: string;
  /** Spawn → its `egress node ready` line, in ms. */
  readyMs: number;
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `env` is added to this process's environment for the node (and so for its handlers). */
export async function startEgressNode(d: Deployment, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<EgressNode> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'egress-node-'));
  const outputDir = path.join(dir, 'out');
  const config = {
    api_key: d.apiKey,
    api_secret: d.apiSecret,
    ws_url: d.wsUrl,
    redis: { address: d.redis.address, username: d.redis.username, password: d.redis.password, db: d.redis.db },
    logging: { level: 'debug' },
    // The template server cannot be turned off; several nodes on one machine need ports of their own.
    template_port: await freePort(),
    local_output_dir: outputDir,
    tmp_dir: path.join(dir, 'tmp'),
    // Suites share this machine with publishers and each other; the measured load would make their
    // admission depend on timing. Admission suites override this to measure for real.
    test_overrides: { cpu_load: 0 },
    http_bind_address: '127.0.0.1',
    ...extra,
  };
  const logPath = path.join(dir, 'egress.log');
  const logFile = createWriteStream(logPath);
  const spawnedAt = performance.now();
  const child = spawn(EGRESS_BIN, ['serve'], {
    env: { ...process.env, ...env, EGRESS_CONFIG_BODY: YAML.stringify(config) },
    // The IPC channel stops the node if this process dies without stopping it (a native crash
    // in a suite once left its node taking the next suites' jobs).
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  // It never holds this process's event loop.
  child.channel?.unref();
  child.stdout!.pipe(logFile);
  child.stderr!.pipe(logFile);
  const log = () => readFileSync(logPath, 'utf8');

  const readyMs = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`egress node did not become ready:\n${log()}`)), 20_000);
    const onData = (b: Buffer) => {
      if (b.toString().includes('egress node ready')) {
        clearTimeout(timer);
        resolve(performance.now() - spawnedAt);
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`egress node exited with ${code}:\n${log()}`)));
  });

  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    process: child,
    outputDir,
    tmpDir: path.join(dir, 'tmp'),
    logPath,
    readyMs,
    log,
    async stop(signal = 'SIGINT') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
