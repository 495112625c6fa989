import t from 'tap';
import { StartEgressRequest } from '../../shared/src/proto/rpc.ts';
import { TrackEgressRequest, ParticipantEgressRequest } from '@livekit/protocol';
import { Admission, RESERVATION_MS, type Measurements } from '../../supervisor/src/admission/admission.ts';
import { HIGH_TICKS_BEFORE_STOP, LOW_TICKS_TO_RESET, OverloadGuard } from '../../supervisor/src/admission/overload.ts';
import type { CpuCostConfig } from '../../shared/src/config/types.ts';

const cost: CpuCostConfig = {
  capacity: 2, maxCpuUtilization: 0.8, maxMemory: 0, memoryCost: 0, roomCompositeCpuCost: 4, audioRoomCompositeCpuCost: 1,
  sdkAudioRoomCompositeCpuCost: 1, webCpuCost: 4, audioWebCpuCost: 1, participantCpuCost: 2, trackCompositeCpuCost: 1,
  trackCpuCost: 0.5, maxPulseClients: 60, cpuKillGraceSec: 30,
};
const track = (id = 'EG_t') => new StartEgressRequest({ egressId: id, request: { case: 'track', value: new TrackEgressRequest({ trackId: 'TR' }) } });
const participant = (id = 'EG_p') => new StartEgressRequest({ egressId: id, request: { case: 'participant', value: new ParticipantEgressRequest({ identity: 'x' }) } });

function fixture(opts: Partial<{ load: number; usage: Record<string, number>; mem: number; cost: Partial<CpuCostConfig> }> = {}) {
  let now = 1_000_000;
  const m: Measurements & { load: number; usage: Record<string, number> } = {
    load: opts.load ?? 0,
    usage: opts.usage ?? {},
    jobUsage: (id) => (id in m.usage ? { cpu: m.usage[id]!, memoryBytes: 0 } : undefined),
    availableMemory: () => opts.mem ?? 16 * 1024 ** 3,
  };
  const a = new Admission({ ...cost, ...opts.cost }, m, { now: () => now, machineCpus: 2 });
  return { a, m, advance: (ms: number) => (now += ms) };
}

t.test('an idle node takes any job that fits the machine, even above the utilization cap', async (t) => {
  const { a } = fixture({ load: 0.9 });
  t.equal(a.available(), 2);
  t.ok(a.canAccept(participant()), 'participant (2 cores) on an idle 2-core node');
});

t.test('a busy node keeps max_cpu_utilization headroom and charges new jobs their cost', async (t) => {
  const { a } = fixture();
  t.ok(a.reserve('EG_1', track('EG_1')));
  t.equal(a.available(), 2 * 0.8 - 0.5);
  t.ok(a.reserve('EG_2', track('EG_2')));
  t.ok(a.reserve('EG_3', track('EG_3')));
  t.notOk(a.canAccept(track('EG_4')), 'a fourth 0.5-core job does not fit 1.6 cores');
  t.notOk(a.reserve('EG_1', track('EG_1')), 'the same egress id cannot be reserved twice');
  a.release('EG_1');
  t.ok(a.canAccept(track('EG_4')), 'room again once one ended');
});

t.test('after the reservation window a job is charged what it measures', async (t) => {
  const { a, m, advance } = fixture();
  a.reserve('EG_1', track('EG_1'));
  m.usage.EG_1 = 0.95;
  t.equal(a.charge('EG_1'), 0.5, 'young: its cost, not its start-up burst');
  m.usage.EG_1 = 0.05;
  advance(RESERVATION_MS);
  t.equal(a.charge('EG_1'), 0.05, 'measured');
  m.usage.EG_1 = 0.9;
  t.equal(a.charge('EG_1'), 0.9, 'a job using more than its cost is charged that');
});

t.test('hold_reservations: a job is charged its cost for its whole life', async (t) => {
  let now = 0;
  const m: Measurements = { load: 0, jobUsage: () => ({ cpu: 0.01, memoryBytes: 0 }), availableMemory: () => 16 * 1024 ** 3 };
  const a = new Admission(cost, m, { now: () => now, machineCpus: 2, holdReservations: true });
  a.reserve('EG_1', track('EG_1'));
  now += RESERVATION_MS * 10;
  t.equal(a.charge('EG_1'), 0.5);
});

t.test('load no job accounts for counts against the node', async (t) => {
  const { a, m } = fixture();
  a.reserve('EG_1', track('EG_1'));
  m.usage.EG_1 = 0.5;
  m.load = 0.75; // 1.5 of 2 cores busy, 0.5 of it ours
  t.equal(a.available(), 1.6 - 1.0 - 0.5);
  t.notOk(a.canAccept(track('EG_2')));
});

t.test('estimated_cpu overrides the cost table', async (t) => {
  const { a } = fixture();
  a.reserve('EG_1', track('EG_1'));
  const cheap = track('EG_2');
  cheap.estimatedCpu = 0.1;
  const heavy = track('EG_3');
  heavy.estimatedCpu = 1.5;
  t.ok(a.canAccept(cheap));
  t.notOk(a.canAccept(heavy));
});

t.test('memory headroom', async (t) => {
  t.notOk(fixture({ mem: 512 * 1024 ** 2 }).a.canAccept(track()), 'less than 1 GB available: refused');
  const go = fixture({ cost: { maxMemory: 10, memoryCost: 1 } });
  t.ok(go.a.canAccept(track()), 'max_memory: 0 used + 1 cost + 1 headroom < 10');
  const full = fixture({ cost: { maxMemory: 2, memoryCost: 1 } });
  t.notOk(full.a.canAccept(track()), 'max_memory: 1 cost + 1 headroom reaches 2');
});

t.test('overload: stop the heaviest after 10 s above 95%, kill it after the grace', async (t) => {
  const g = new OverloadGuard(0.8, 30_000);
  const jobs = [
    { egressId: 'light', cpu: 0.2, cost: 0.5, recording: true },
    { egressId: 'heavy', cpu: 1.2, cost: 0.5, recording: true },
    { egressId: 'heaviest-within-cost', cpu: 1.5, cost: 2, recording: true },
  ];
  let now = 0;
  for (let i = 1; i < HIGH_TICKS_BEFORE_STOP; i++) t.equal(g.tick(0.99, jobs, (now += 1000)), undefined, `tick ${i}: nothing yet`);
  t.same(g.tick(0.99, jobs, (now += 1000)), { kind: 'stop', egressId: 'heavy' }, 'the heaviest job over its own cost is stopped');
  // Stopped, it is ENDING: no longer a candidate, but still the one killed if the load stays.
  const ending = jobs.map((j) => (j.egressId === 'heavy' ? { ...j, recording: false } : j));
  t.equal(g.tick(0.99, ending, (now += 29_000)), undefined, 'within the grace: wait');
  t.same(g.tick(0.99, ending, now + 1000), { kind: 'kill', egressId: 'heavy', cpu: 1.2 }, 'still high 30 s later: killed');
});

t.test('overload: only recording jobs are stopped, and the streak counts from the second one', async (t) => {
  const g = new OverloadGuard(0.8, 30_000);
  const starting = [
    { egressId: 'active', cpu: 0.3, cost: 0.5, recording: true },
    { egressId: 'starting', cpu: 0, cost: 0.5, recording: false },
  ];
  let now = 0;
  for (let i = 0; i < 20; i++) t.equal(g.tick(0.99, starting, (now += 1000)), undefined, 'one recording job and one starting: nothing');
  const both = starting.map((j) => ({ ...j, recording: true }));
  for (let i = 1; i < HIGH_TICKS_BEFORE_STOP; i++) t.equal(g.tick(0.99, both, (now += 1000)), undefined, `tick ${i} with both recording`);
  t.same(g.tick(0.99, both, now + 1000), { kind: 'stop', egressId: 'active' }, 'the heaviest recording job, 10 s after the second started');
});

t.test('overload: no action for one job, at or below the threshold, or once load falls', async (t) => {
  const g = new OverloadGuard(0.8, 30_000);
  let now = 0;
  for (let i = 0; i < 20; i++) t.equal(g.tick(0.99, [{ egressId: 'only', cpu: 2, cost: 0.5, recording: true }], (now += 1000)), undefined);
  const jobs = [{ egressId: 'a', cpu: 1, cost: 0.5, recording: true }, { egressId: 'b', cpu: 0.5, cost: 0.5, recording: true }];
  for (let i = 0; i < 20; i++) t.equal(g.tick(0.95, jobs, (now += 1000)), undefined, 'exactly at 0.95 is not above');
  const h = new OverloadGuard(0.8, 30_000);
  for (let i = 0; i < HIGH_TICKS_BEFORE_STOP - 1; i++) h.tick(0.99, jobs, (now += 1000));
  for (let i = 0; i < LOW_TICKS_TO_RESET; i++) h.tick(0.5, jobs, (now += 1000));
  t.equal(h.tick(0.99, jobs, (now += 1000)), undefined, 'a calm spell resets the count');
  t.equal(new OverloadGuard(0.98, 1).threshold, 0.99, 'a cap of 0.95 or more moves the threshold halfway to 1');
  const stopped = new OverloadGuard(0.8, 30_000);
  for (let i = 0; i < HIGH_TICKS_BEFORE_STOP; i++) stopped.tick(0.99, jobs, (now += 1000));
  t.equal(stopped.tick(0.99, [jobs[1]!, { egressId: 'c', cpu: 0.1, cost: 0.5, recording: true }], now + 31_000), undefined, 'the stopped job ended: nothing to kill');
});
