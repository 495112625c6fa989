import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeUdpPort } from './ports.ts';
import { makeTmpDir, spawnService, waitReady } from './process.ts';

/*
 * An SRT ingest: srt-live-transmit (srt-tools, SRT 1.5.1) listening on UDP 127.0.0.1:<port>,
 * writing what it receives, an MPEG-TS, to `file`.
 *
 * What it does with its callers (checked with gst-launch … mpegtsmux ! srtsink as the caller):
 * - After a caller disconnects it keeps running and listening (-autoreconnect defaults to yes),
 *   and a second caller is accepted: its stream is appended to the same file. The file is then
 *   two TS streams back to back whose timestamps start over (ffprobe's format duration of such a
 *   file is meaningless), so a test of reconnects should look at packets, not at the duration.
 * - The last ~150 ms a caller sent before it disconnected (about SRT's default 120 ms latency)
 *   did not reach the file: what is still in flight when the connection closes is dropped.
 * - srtsink needs `mpegtsmux alignment=7` (7 × 188 = 1316 bytes, one SRT live payload) in front
 *   of it: with the muxer's default alignment, bigger buffers (every keyframe, with the SPS/PPS)
 *   were lost and the file could not be decoded.
 *
 * stdout is made unbuffered (stdbuf -o0): otherwise the last few KB of the file are written only
 * when srt-live-transmit exits, and stop() removes the file.
 */

export interface SrtListener {
  /** UDP port */
  port: number;
  /** srt://127.0.0.1:<port>?mode=caller, what a sender connects to */
  url: string;
  /** the received MPEG-TS, complete up to what arrived (removed by stop()) */
  file: string;
  /** SIGTERM (then SIGKILL), and removes the directory with `file` (kept with $RIG_KEEP_LOGS). */
  stop(): Promise<void>;
  /** SIGKILL; resolves once it exited. `file` stays until stop(). */
  kill(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

/** Whether a UDP socket is bound to 127.0.0.1:<port> (srt-live-transmit prints nothing with -q). */
function udpBound(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  try {
    return readFileSync('/proc/net/udp', 'utf8')
      .split('\n')
      .some((line) => line.trim().split(/\s+/)[1] === local);
  } catch {
    return false;
  }
}

export async function startSrtListener(opts?: { port?: number }): Promise<SrtListener> {
  const port = opts?.port ?? (await freeUdpPort());
  const dir = makeTmpDir('srt');
  const file = join(dir, 'received.ts');
  const pidPath = join(dir, 'srt-live-transmit.pid');
  // The shell writes its pid and becomes stdbuf, which becomes srt-live-transmit: one pid for kill().
  const script = 'echo $$ > "$3" && exec stdbuf -o0 srt-live-transmit -q "$1" file://con > "$2"';
  const service = spawnService(
    'srt-live-transmit',
    'sh',
    ['-c', script, 'sh', `srt://127.0.0.1:${port}?mode=listener`, file, pidPath],
    { tmpDir: dir },
  );
  try {
    await waitReady(service, async () => udpBound(port), START_TIMEOUT_MS);
  } catch (err) {
    await service.stop({ keepTmp: true });
    throw err;
  }
  const pid = Number(readFileSync(pidPath, 'utf8').trim());

  return {
    port,
    url: `srt://127.0.0.1:${port}?mode=caller`,
    file,
    stop: () => service.stop(),
    kill: async () => {
      if (service.exited) return;
      process.kill(pid, 'SIGKILL');
      while (!service.exited) await sleep(20);
    },
  };
}
