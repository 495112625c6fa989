// fake-gcs-server (Go, installed into .cache/bin by tests/rig/setup.sh) on 127.0.0.1 over plain
// http, with its file-system back-end so down()/up() (a real outage: the port refuses
// connections, then the same port and data come back) keep the stored objects.
//
// It accepts any credentials or none. Objects are readable at `<endpoint>/<bucket>/<name>`
// (public host = the endpoint) and through the JSON API.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../ports.ts';
import { startRestartable, type RestartableService } from './common.ts';

export const FAKE_GCS_BIN = join(fileURLToPath(new URL('../../..', import.meta.url)), '.cache', 'bin', 'fake-gcs-server');

export interface GcsServer extends RestartableService {
  port: number;
  /** http://127.0.0.1:<port>, the value for GcpConfig.endpoint */
  endpoint: string;
  createBucket(name: string): Promise<void>;
  /** The stored bytes of an object (JSON API media download). */
  download(bucket: string, name: string): Promise<Buffer>;
  /** Object metadata from the JSON API (name, size, contentType, md5Hash, crc32c, …). */
  metadata(bucket: string, name: string): Promise<Record<string, unknown>>;
}

async function ok(url: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`fake-gcs-server: ${init?.method ?? 'GET'} ${url} → ${res.status} ${await res.text()}`);
  return res;
}

export async function startGcs(opts: { buckets?: string[] } = {}): Promise<GcsServer> {
  if (!existsSync(FAKE_GCS_BIN)) {
    throw new Error(`${FAKE_GCS_BIN} is missing: run tests/rig/setup.sh (npm run setup)`);
  }
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const service = await startRestartable({
    name: 'fake-gcs-server',
    command: FAKE_GCS_BIN,
    args: (dataDir) => [
      '-scheme', 'http', '-host', '127.0.0.1', '-port', String(port),
      '-backend', 'filesystem', '-filesystem-root', dataDir,
      '-external-url', endpoint, '-public-host', `127.0.0.1:${port}`,
      '-log-level', 'warn',
    ],
    ready: async () => {
      try {
        const res = await fetch(`${endpoint}/storage/v1/b`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.ok;
      } catch {
        return false;
      }
    },
  });

  const objectUrl = (bucket: string, name: string) =>
    `${endpoint}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`;
  const server: GcsServer = Object.assign(service, {
    port,
    endpoint,
    async createBucket(name: string) {
      await ok(`${endpoint}/storage/v1/b?project=test`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
    },
    async download(bucket: string, name: string) {
      const res = await ok(`${objectUrl(bucket, name)}?alt=media`);
      return Buffer.from(await res.arrayBuffer());
    },
    async metadata(bucket: string, name: string) {
      const res = await ok(objectUrl(bucket, name));
      return (await res.json()) as Record<string, unknown>;
    },
  });
  try {
    for (const b of opts.buckets ?? ['egress']) await server.createBucket(b);
  } catch (err) {
    await service.stop();
    throw err;
  }
  return server;
}
