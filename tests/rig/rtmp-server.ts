import { connect } from 'node:net';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.ts';
import { makeTmpDir, spawnService, waitReady, type Service } from './process.ts';

/*
 * An RTMP ingest: Debian's nginx with libnginx-mod-rtmp, one single process (no master, no
 * daemon) on 127.0.0.1 only, recording every publish to <dir>/rec as FLV.
 *
 * record_unique (checked on nginx 1.22.1 + libnginx-mod-rtmp): each publish writes
 * `<key>-<unix seconds of the publish>.flv`, so a reconnect gets a file of its own. The suffix
 * has a one-second resolution and record_append is off, so two publishes of one key that start
 * in the same second share a name and the second truncates the first (seen with three
 * back-to-back 0.1 s publishes: two files). Any reconnect that waits for a server restart or a
 * backoff of a second or more is safe.
 *
 * A kill()ed nginx leaves the recording it was writing as it stood: nginx-rtmp writes FLV tags as
 * they arrive and never rewrites a header at the end, so the partial file stays playable.
 */

export interface RtmpServer {
  port: number;
  /** rtmp://127.0.0.1:<port>/<app>/<key>; the server has one application, `live`. */
  url(app: string, key: string): string;
  /** The .flv files recorded for the stream key, oldest first (by their record_unique timestamp). */
  recordings(key: string): Promise<string[]>;
  /** Whether a publisher is connected on `key` now, from the current nginx's info-level log. */
  publishing(key: string): Promise<boolean>;
  /** The running nginx's pid (for SIGSTOP: a server that stops reading). */
  pid(): number;
  /** SIGKILL (a crash: no publisher is told, recordings stop mid-file); resolves once nginx exited. */
  kill(): Promise<void>;
  /** Starts nginx again on the same port and record dir; a running one is stopped first (SIGTERM). */
  restart(): Promise<void>;
  /** Stops nginx and removes its directory, recordings included (kept with $RIG_KEEP_LOGS). */
  stop(): Promise<void>;
}

const NGINX = '/usr/sbin/nginx';
const RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';
const START_ATTEMPTS = 3;
const START_TIMEOUT_MS = 10_000;

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => done(true));
  });
}

function config(dir: string, port: number): string {
  return `load_module ${RTMP_MODULE};
daemon off;
master_process off;
worker_processes 1;
# info: the publish/disconnect lines that publishing() reads
error_log ${join(dir, 'error.log')} info;
pid ${join(dir, 'nginx.pid')};

events {
  worker_connections 256;
}

rtmp {
  server {
    listen 127.0.0.1:${port};
    application live {
      live on;
      record all;
      record_path ${join(dir, 'rec')};
      record_unique on;
    }
  }
}
`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

// `2026/12/03 06:07:53 [info] 13376#13376: *1 publish: name='k1' args='' type=live ...`
const LOG_LINE = /^\S+ \S+ \[\w+\] (\d+)#\d+: \*(\d+) (.*)$/;

/** Stream keys with a publisher connected, by the log lines of nginx process `pid`. */
function publishers(log: string, pid: number): Map<string, string> {
  const byConnection = new Map<string, string>();
  for (const line of log.split('\n')) {
    const m = LOG_LINE.exec(line);
    if (!m || Number(m[1]) !== pid) continue;
    const [, , connection, message] = m as unknown as [string, string, string, string];
    const publish = /^publish: name='([^']*)'/.exec(message);
    if (publish) byConnection.set(connection, publish[1]!);
    // deleteStream: unpublished (the connection may stay); disconnect: gone; already publishing: refused
    else if (/^(deleteStream|disconnect)\b|already publishing/.test(message)) byConnection.delete(connection);
  }
  return byConnection;
}

export async function startRtmpServer(opts?: { port?: number }): Promise<RtmpServer> {
  const port = opts?.port ?? (await freePort());
  const dir = makeTmpDir('rtmp');
  const recDir = join(dir, 'rec');
  const confPath = join(dir, 'nginx.conf');
  const pidPath = join(dir, 'nginx.pid');
  const errorLog = join(dir, 'error.log');
  mkdirSync(recDir);
  writeFileSync(confPath, config(dir, port));

  let service: Service | undefined;
  let pid: number | undefined;

  const start = async () => {
    for (let attempt = 1; ; attempt++) {
      rmSync(pidPath, { force: true });
      // -e: the error log nginx uses before it has read the config (else /var/log/nginx)
      const s = spawnService('nginx', NGINX, ['-p', `${dir}/`, '-c', confPath, '-e', errorLog], { tmpDir: dir });
      try {
        // the pid file is written after the socket listens: wait for both, kill() reads it
        await waitReady(s, async () => existsSync(pidPath) && (await accepts(port)), START_TIMEOUT_MS);
        service = s;
        pid = readPid(pidPath);
        if (pid === undefined) throw new Error(`nginx wrote no pid to ${pidPath}`);
        return;
      } catch (err) {
        // keepTmp: the directory holds the recordings and the log the error names
        await s.stop({ keepTmp: true });
        // After a kill the port may still be held for a moment (nginx itself retries bind() for
        // 2.5 s, then exits); a fresh nginx usually gets it.
        if (attempt >= START_ATTEMPTS) throw err;
        await sleep(500);
      }
    }
  };

  const kill = async () => {
    const s = service;
    if (!s || s.exited) return;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    while (!s.exited) await sleep(20);
  };

  try {
    await start();
  } catch (err) {
    throw new Error(`rtmp server (nginx) did not start on 127.0.0.1:${port}: ${(err as Error).message}`, { cause: err });
  }

  return {
    port,
    url: (app, key) => `rtmp://127.0.0.1:${port}/${app}/${key}`,
    recordings: async (key) => {
      const name = new RegExp(`^${escapeRegExp(key)}-(\\d+)\\.flv$`);
      return readdirSync(recDir)
        .map((f) => ({ f, m: name.exec(f) }))
        .filter((e) => e.m !== null)
        .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
        .map((e) => join(recDir, e.f));
    },
    publishing: async (key) => {
      if (!service || service.exited || pid === undefined) return false;
      const log = readFileSync(errorLog, 'utf8');
      return [...publishers(log, pid).values()].includes(key);
    },
    pid: () => {
      if (pid === undefined) throw new Error('nginx is not running');
      return pid;
    },
    kill,
    restart: async () => {
      const s = service;
      if (s && !s.exited && pid !== undefined) {
        // not s.stop(): that removes the directory with the recordings. SIGTERM is nginx's fast
        // shutdown: connections are dropped, recordings closed.
        process.kill(pid, 'SIGTERM');
        const deadline = Date.now() + 5000;
        while (!s.exited && Date.now() < deadline) await sleep(20);
        await kill();
      }
      await start();
    },
    stop: async () => {
      if (service) await service.stop();
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}
