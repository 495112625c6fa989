// The supervisor's reading of the recovery handler's output (issue 10, fault 4), with a real child
// process that prints what a handler killed mid-line, or a broken one, would print.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Config } from '../../shared/src/config/types.ts';
import type { OutputReport } from '../../shared/src/ipc.ts';
import { recoverOutputs } from '../../supervisor/src/fleet/recovery.ts';

const good = { type: 'file', filename: 'good.mp4', location: '/out/good.mp4', size: 1234, durationNs: '5000000000', backupUsed: false };
const lines = [
  JSON.stringify(good),
  // Cut off mid-line, as by the recovery timeout's SIGKILL.
  JSON.stringify({ ...good, filename: 'cut.mp4' }).slice(0, 40),
  // Whole JSON lines that lack what the supervisor reads: each threw (BigInt, .map) in a detached promise.
  JSON.stringify({ type: 'file', filename: 'short.mp4', location: '/out/short.mp4' }),
  JSON.stringify({ type: 'file', filename: 'frac.mp4', location: '/out/frac.mp4', size: 1.5, durationNs: '1.5e9', backupUsed: false }),
  JSON.stringify({ type: 'segments', playlistName: 'p.m3u8', size: 1, durationNs: '1', backupUsed: false }),
  'null',
  '42',
];

const dir = mkdtempSync(path.join(os.tmpdir(), 'recovery-test-'));
const entry = path.join(dir, 'fake-recover.mjs');
writeFileSync(
  entry,
  `for await (const _ of process.stdin);\nprocess.stdout.write(${JSON.stringify(lines.join('\n'))});\nprocess.exit(1);\n`,
);

const outputs: OutputReport[] = [{ type: 'file', filename: 'good.mp4', localPath: path.join(dir, 'good.mp4') }];

t.test('bad lines are reported and skipped; the good line is still recovered', async (t) => {
  const r = await recoverOutputs(outputs, new Uint8Array(), {} as Config, entry);
  t.same(r.files.map((f) => [f.filename, f.location, Number(f.size), Number(f.duration)]), [['good.mp4', '/out/good.mp4', 1234, 5e9]]);
  t.equal(r.segments.length, 0);
  const unreadable = r.errors.filter((e) => e.startsWith('recovery handler printed an unreadable line: '));
  t.equal(unreadable.length, lines.length - 1, `every bad line is named: ${r.errors.join(' | ')}`);
  t.equal(r.errors.at(-1), 'recovery handler failed: exit 1', 'and the non-zero exit');
});
