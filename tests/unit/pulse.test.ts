// PulseAudio for web sources against the machine's real server (started if none runs): a job's null
// sink, and the reaping of sinks whose egress is gone.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { egressSinks, ensurePulse, loadNullSink, SinkReaper, spareSinkName, unloadEgressSink, unloadModule } from '../../shared/src/pulse.ts';

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

  await unloadEgressSink({ egressId: dead });
  t.notOk((await egressSinks()).some((s) => s.egressId === dead), "a dead handler's sink is unloaded by its egress id");

  // Spares' sinks (handler_pool.browser) are named after their handler's pid: pids far above
  // pid_max stand for a spare that lives and ones that died.
  const [livePid, deadPid, killedPid] = [4_000_000_001, 4_000_000_002, 4_000_000_003];
  const spares = await Promise.all([livePid, deadPid, killedPid].map((pid) => loadNullSink(spareSinkName(pid))));
  t.teardown(() => Promise.all(spares.map((s) => unloadModule(s.module))));
  t.ok((await egressSinks()).some((s) => s.pid === livePid && s.egressId === undefined), "a spare's sink is listed by its pid");
  await unloadEgressSink({ egressId: 'EG_none', pid: killedPid });
  t.notOk((await egressSinks()).some((s) => s.pid === killedPid), "a killed handler's spare sink is unloaded by its pid");

  // Only this test's sinks count as running or orphaned: other jobs on this machine are left alone.
  const running = (id: string) => id !== orphan;
  const isAlive = (pid: number) => pid !== deadPid;
  const reaper = new SinkReaper(30_000);
  t.same(await reaper.sweep(running, 1_000, isAlive), [], 'an orphan is kept for the grace time (a job still starting)');
  t.same(await reaper.sweep(running, 20_000, isAlive), [], 'still within the grace time');
  t.same((await reaper.sweep(running, 31_000, isAlive)).sort(), [orphan, `pid ${deadPid}`].sort(), "reaped after it: the egress's and the dead spare's");
  const left = await egressSinks();
  t.ok(left.some((s) => s.egressId === kept) && !left.some((s) => s.egressId === orphan), 'the running egress keeps its sink');
  t.ok(left.some((s) => s.pid === livePid) && !left.some((s) => s.pid === deadPid), 'the live spare keeps its sink');
});
