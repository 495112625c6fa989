// The recovery handler: a short process that finalizes what a dead handler left on disk, so the
// FAILED EgressInfo still lists playable files. Input: OutputReport[] as JSON in argv[2].
// Output: one JSON line per file on stdout: { filename, location, size, durationNs } or { filename, location, error }.
import { copyFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { OutputReport } from '@egress/shared/ipc.ts';

async function durationSeconds(file: string): Promise<number> {
  const { stdout } = await execa('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
  return Number(stdout.trim()) || 0;
}

/** Remuxes without re-encoding; MP4 gets its index up front. A file ffmpeg cannot read is kept as it is. */
async function finalize(o: OutputReport): Promise<object> {
  await mkdir(path.dirname(o.destination), { recursive: true });
  const mp4 = o.destination.endsWith('.mp4') ? ['-movflags', '+faststart'] : [];
  const remux = await execa('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', o.localPath, '-c', 'copy', ...mp4, o.destination], { reject: false });
  if (remux.exitCode !== 0) {
    await copyFile(o.localPath, o.destination);
    return { filename: o.filename, location: o.destination, size: (await stat(o.destination)).size, error: `could not finalize: ${remux.stderr.trim().split('\n').pop()}` };
  }
  const seconds = await durationSeconds(o.destination);
  return { filename: o.filename, location: o.destination, size: (await stat(o.destination)).size, durationNs: String(Math.round(seconds * 1e9)) };
}

const outputs = JSON.parse(process.argv[2] ?? '[]') as OutputReport[];
for (const o of outputs) {
  const exists = await stat(o.localPath).then((s) => s.size > 0, () => false);
  if (!exists) continue;
  process.stdout.write(JSON.stringify(await finalize(o)) + '\n');
}
