// PulseAudio for web sources against the machine's real server (started if none runs): a job's null
// sink, and the reaping of sinks whose egress is gone.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { egressSinks, ensurePulse, loadNullSink, SinkReaper, unloadEgressSink, unloadModule } from '../../shared/src/pulse.ts';

const egressId = () => `EG_test${randomBytes(4).toString('hex')}`;

t.test('a null sink per egress, and its reaping', async (t) => {
  await ensurePulse();
  await ensurePulse();
  t.pass('ensurePulse finds the server it started');

  const [kept, orphan, dead] = [egressId(), egressId(), egressId()];
  const sinks = await Promise.all([kept, orphan, dead].map(loadNullSink));
  t.teardown(() => Promise.all(sinks.map((s) => unloadModule(s.module))));
  t.equal(sinks[0]!.monitor, `${kept}.monitor`, 'gst records its monitor');
  const listed = (await egressSinks()).map((s) => s.egressId);
  for (const id of [kept, orphan, dead]) t.ok(listed.includes(id), `${id} listed`);

  await unloadEgressSink(dead);
  t.notOk((await egressSinks()).some((s) => s.egressId === dead), "a dead handler's sink is unloaded by its egress id");

  // Only this test's sinks count as running or orphaned: other jobs on this machine are left alone.
  const running = (id: string) => id !== orphan;
  const reaper = new SinkReaper(30_000);
  t.same(await reaper.sweep(running, 1_000), [], 'an orphan is kept for the grace time (a job still starting)');
  t.same(await reaper.sweep(running, 20_000), [], 'still within the grace time');
  t.same(await reaper.sweep(running, 31_000), [orphan], 'reaped after it');
  const left = (await egressSinks()).map((s) => s.egressId);
  t.ok(left.includes(kept) && !left.includes(orphan), 'the running egress keeps its sink');
});
