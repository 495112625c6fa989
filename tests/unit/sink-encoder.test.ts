// The encoder's finish when gst wedges after its branches have written everything (splitmuxsink in
// gst 1.22 sometimes never posts EOS after its last fragment): a branch that reports itself drained
// lets the encoder stop gst within seconds instead of failing the job at the 30 s watchdog. A real
// gst-launch is wedged for the test by a filesink opening a FIFO nobody reads.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Config } from '../../shared/src/config/types.ts';
import type { Logger } from '../../shared/src/logging.ts';
import type { PipelineConfig } from '../../shared/src/plan/pipeline-config.ts';
import { Encoder } from '../../handler/src/sink/encoder.ts';

t.test('a wedged gst whose branches have drained is stopped, and the finish succeeds', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sink-encoder-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'blocked.ogg');
  await execa('mkfifo', [fifo]);
  const warnings: string[] = [];
  const log = { debug: () => undefined, info: () => undefined, warn: (m: string) => warnings.push(m), error: () => undefined } as unknown as Logger;
  const plan = { passthrough: false, audio: { codec: 'opus', bitrateKbps: 64, frequency: 48_000, channels: 2 }, outputs: [] } as unknown as PipelineConfig;
  const pids: number[] = [];
  const encoder = new Encoder({
    plan,
    config: {} as Config,
    log,
    scratch: dir,
    process: (p) => pids.push(p.pid),
    output: () => undefined,
    startedAtNs: () => 0n,
    backupUsed: () => undefined,
    changed: () => undefined,
    endJob: () => undefined,
  });
  let drained = false;
  encoder.add({ branch: (name) => ({ type: 'file', name, fileType: 'ogg', location: fifo }), drained: () => drained });
  await encoder.start();
  encoder.audio({ samples: new Int16Array(960), ptsNs: 0n, durationNs: 10_000_000n });
  t.equal(pids.length, 1, 'gst started at the first frame');
  await new Promise((r) => setTimeout(r, 500));
  drained = true;
  const t0 = Date.now();
  await encoder.finish();
  const took = Date.now() - t0;
  t.ok(took < 8_000, `finished in ${took} ms, long before the 30 s watchdog`);
  t.match(warnings.join('\n'), /wedged/, 'and said why it stopped gst');
});
