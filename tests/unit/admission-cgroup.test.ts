// Cgroup-aware admission: quota and memory limit read from a fake /proc and /sys root, the capacity's
// precedence, and a quota'd node counting only its own processes against its capacity.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { TrackEgressRequest } from '@livekit/protocol';
import { StartEgressRequest } from '../../shared/src/proto/rpc.ts';
import type { CpuCostConfig } from '../../shared/src/config/types.ts';
import { Admission, type Measurements } from '../../supervisor/src/admission/admission.ts';
import { parseMountInfo, readCgroupLimits, type CgroupLimits } from '../../supervisor/src/admission/cgroup.ts';
import { CpuMonitor } from '../../supervisor/src/admission/monitor.ts';
import { availableMemory, ownProcesses, type ProcSample } from '../../supervisor/src/admission/proc.ts';
import { chooseResources, parseCpuRequest, type Resources } from '../../supervisor/src/admission/resources.ts';

const MB = 1024 ** 2;
const GB = 1024 ** 3;
const HOST_MEMORY = 64 * GB;
const V1_UNLIMITED = '9223372036854771712';

const mount = (id: number, root: string, at: string, type: 'cgroup' | 'cgroup2', opts: string) =>
  `${id} 25 0:${id} ${root} ${at} rw,nosuid,nodev,noexec,relatime shared:${id} - ${type} cgroup rw,${opts}`;
const V1_MOUNTS = [
  '25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw',
  mount(30, '/', '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'cpu,cpuacct'),
  mount(31, '/', '/sys/fs/cgroup/memory', 'cgroup', 'memory'),
].join('\n');
const V2_MOUNTS = ['25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw', mount(30, '/', '/sys/fs/cgroup', 'cgroup2', 'nsdelegate')].join('\n');

interface Case {
  name: string;
  /** Absent: no /proc/self/cgroup at all (not Linux). */
  cgroup?: string;
  mountinfo?: string;
  files: Record<string, string>;
  want: CgroupLimits;
}

const CPU1 = 'sys/fs/cgroup/cpu,cpuacct';
const MEM1 = 'sys/fs/cgroup/memory';
const cases: Case[] = [
  {
    name: 'v1: a quota of 1.5 cores, 512 MB limit, usage less inactive cache',
    cgroup: '12:memory:/egress\n4:cpu,cpuacct:/egress\n0::/',
    mountinfo: V1_MOUNTS,
    files: {
      [`${CPU1}/cpu.cfs_quota_us`]: '-1', [`${CPU1}/cpu.cfs_period_us`]: '100000',
      [`${CPU1}/egress/cpu.cfs_quota_us`]: '150000\n', [`${CPU1}/egress/cpu.cfs_period_us`]: '100000\n',
      [`${MEM1}/memory.limit_in_bytes`]: V1_UNLIMITED,
      [`${MEM1}/egress/memory.limit_in_bytes`]: `${512 * MB}\n`, [`${MEM1}/egress/memory.usage_in_bytes`]: `${200 * MB}\n`,
      [`${MEM1}/egress/memory.stat`]: `cache 1\ninactive_file 7\ntotal_inactive_file ${50 * MB}\n`,
    },
    want: { cpus: 1.5, memoryLimit: 512 * MB, memoryUsage: 150 * MB },
  },
  {
    name: 'v1: unlimited (-1 quota, the huge v1 "no limit" value)',
    cgroup: '12:memory:/egress\n4:cpu,cpuacct:/egress',
    mountinfo: V1_MOUNTS,
    files: {
      [`${CPU1}/egress/cpu.cfs_quota_us`]: '-1', [`${CPU1}/egress/cpu.cfs_period_us`]: '100000',
      [`${MEM1}/egress/memory.limit_in_bytes`]: V1_UNLIMITED, [`${MEM1}/egress/memory.usage_in_bytes`]: '1000',
    },
    want: {},
  },
  {
    name: 'v1: a limit above the machine\'s RAM limits nothing',
    cgroup: '12:memory:/egress',
    mountinfo: V1_MOUNTS,
    files: { [`${MEM1}/egress/memory.limit_in_bytes`]: `${128 * GB}`, [`${MEM1}/egress/memory.usage_in_bytes`]: '1000' },
    want: {},
  },
  {
    name: 'v1: the tightest ancestor binds (pod quota above an unlimited container; container memory below the pod\'s)',
    cgroup: '12:memory:/kubepods/pod1/ctr\n4:cpu,cpuacct:/kubepods/pod1/ctr',
    mountinfo: V1_MOUNTS,
    files: {
      [`${CPU1}/kubepods/pod1/cpu.cfs_quota_us`]: '200000', [`${CPU1}/kubepods/pod1/cpu.cfs_period_us`]: '100000',
      [`${CPU1}/kubepods/pod1/ctr/cpu.cfs_quota_us`]: '-1', [`${CPU1}/kubepods/pod1/ctr/cpu.cfs_period_us`]: '100000',
      [`${MEM1}/kubepods/pod1/memory.limit_in_bytes`]: `${4 * GB}`, [`${MEM1}/kubepods/pod1/memory.usage_in_bytes`]: `${3 * GB}`,
      [`${MEM1}/kubepods/pod1/ctr/memory.limit_in_bytes`]: `${2 * GB}`, [`${MEM1}/kubepods/pod1/ctr/memory.usage_in_bytes`]: `${GB}`,
    },
    want: { cpus: 2, memoryLimit: 2 * GB, memoryUsage: GB },
  },
  {
    name: 'v1: a container without a cgroup namespace sees its own group mounted as the root',
    cgroup: '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc',
    mountinfo: [mount(30, '/docker/abc', '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'cpu,cpuacct'), mount(31, '/docker/abc', '/sys/fs/cgroup/memory', 'cgroup', 'memory')].join('\n'),
    files: {
      [`${CPU1}/cpu.cfs_quota_us`]: '50000', [`${CPU1}/cpu.cfs_period_us`]: '100000',
      [`${MEM1}/memory.limit_in_bytes`]: `${GB}`, [`${MEM1}/memory.usage_in_bytes`]: `${100 * MB}`,
    },
    want: { cpus: 0.5, memoryLimit: GB, memoryUsage: 100 * MB },
  },
  {
    name: 'v1 on a hybrid host: the v1 controllers win over an empty unified tree',
    cgroup: '4:cpu:/egress\n0::/egress',
    mountinfo: [mount(30, '/', '/sys/fs/cgroup/cpu', 'cgroup', 'cpu'), mount(40, '/', '/sys/fs/cgroup/unified', 'cgroup2', 'nsdelegate')].join('\n'),
    files: { 'sys/fs/cgroup/cpu/egress/cpu.cfs_quota_us': '100000', 'sys/fs/cgroup/cpu/egress/cpu.cfs_period_us': '100000' },
    want: { cpus: 1 },
  },
  {
    name: 'v2: cpu.max of 2 cores, memory.max 1 GB, usage less inactive_file',
    cgroup: '0::/kubepods.slice/egress.scope\n',
    mountinfo: V2_MOUNTS,
    files: {
      'sys/fs/cgroup/kubepods.slice/egress.scope/cpu.max': '200000 100000\n',
      'sys/fs/cgroup/kubepods.slice/egress.scope/memory.max': `${GB}\n`,
      'sys/fs/cgroup/kubepods.slice/egress.scope/memory.current': `${300 * MB}\n`,
      'sys/fs/cgroup/kubepods.slice/egress.scope/memory.stat': `anon 5\nfile 6\ninactive_file ${100 * MB}\nactive_file 9\n`,
    },
    want: { cpus: 2, memoryLimit: GB, memoryUsage: 200 * MB },
  },
  {
    name: 'v2: "max" is no limit',
    cgroup: '0::/egress',
    mountinfo: V2_MOUNTS,
    files: { 'sys/fs/cgroup/egress/cpu.max': 'max 100000', 'sys/fs/cgroup/egress/memory.max': 'max', 'sys/fs/cgroup/egress/memory.current': '1000' },
    want: {},
  },
  {
    name: 'v2: a limit on the parent slice binds',
    cgroup: '0::/pod.slice/ctr',
    mountinfo: V2_MOUNTS,
    files: { 'sys/fs/cgroup/pod.slice/cpu.max': '25000 100000', 'sys/fs/cgroup/pod.slice/ctr/cpu.max': 'max 100000' },
    want: { cpus: 0.25 },
  },
  {
    name: 'missing quota and limit files: no limits',
    cgroup: '12:memory:/egress\n4:cpu,cpuacct:/egress',
    mountinfo: V1_MOUNTS,
    files: {},
    want: {},
  },
  {
    name: 'a memory limit whose usage cannot be read is not used',
    cgroup: '0::/egress',
    mountinfo: V2_MOUNTS,
    files: { 'sys/fs/cgroup/egress/memory.max': `${GB}` },
    want: {},
  },
  {
    name: 'no cgroup mounted (a process in a cgroup the mount table does not show)',
    cgroup: '4:cpu,cpuacct:/egress\n0::/egress',
    mountinfo: '25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw',
    files: { [`${CPU1}/egress/cpu.cfs_quota_us`]: '100000', [`${CPU1}/egress/cpu.cfs_period_us`]: '100000' },
    want: {},
  },
  { name: 'no /proc at all', files: {}, want: {} },
];

function fakeRoot(t: Test, c: Pick<Case, 'cgroup' | 'mountinfo' | 'files'>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'cgroup-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const files = { ...c.files, ...(c.cgroup !== undefined && { 'proc/self/cgroup': c.cgroup, 'proc/self/mountinfo': c.mountinfo ?? '' }) };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

t.test('cgroup limits from a fake root', async (t) => {
  for (const c of cases) {
    const root = fakeRoot(t, c);
    const got = readCgroupLimits({ root, hostMemory: HOST_MEMORY });
    t.same({ cpus: got.cpus, memoryLimit: got.memoryLimit, memoryUsage: got.memoryUsage }, { cpus: c.want.cpus, memoryLimit: c.want.memoryLimit, memoryUsage: c.want.memoryUsage }, c.name);
  }
});

t.test('the memory group and quota file are named, for re-reading usage and the start-up log', async (t) => {
  const root = fakeRoot(t, cases[0]!);
  const got = readCgroupLimits({ root, hostMemory: HOST_MEMORY });
  t.same(got.memoryGroup, { version: 1, dir: path.join(root, MEM1, 'egress') });
  t.equal(got.cpuFile, path.join(root, CPU1, 'egress/cpu.cfs_quota_us'));
});

t.test('mountinfo: escaped paths and optional fields', async (t) => {
  const [m] = parseMountInfo('30 25 0:26 / /sys/fs/cgroup/my\\040cpu rw shared:9 master:2 - cgroup cgroup rw,cpu\n');
  t.same(m, { root: '/', mountPoint: '/sys/fs/cgroup/my cpu', fsType: 'cgroup', superOptions: ['rw', 'cpu'] });
});

t.test('LIVEKIT_CPU_REQUEST is a float count of cores, as Go parses it', async (t) => {
  const table: [string | undefined, number | undefined][] = [
    ['2', 2], ['1.5', 1.5], [' 4 ', 4], ['0', undefined], ['-1', undefined], ['', undefined], ['1500m', undefined], ['abc', undefined], [undefined, undefined],
  ];
  for (const [input, want] of table) t.equal(parseCpuRequest(input), want, JSON.stringify(input));
});

t.test('capacity: LIVEKIT_CPU_REQUEST, then cpu_cost.cpu_capacity, then the cgroup quota, then the machine', async (t) => {
  const quota1: CgroupLimits = { cpus: 1, cpuFile: '/sys/fs/cgroup/cpu/cpu.cfs_quota_us' };
  const table: { name: string; capacity: number; cpuRequest?: string; cgroup: CgroupLimits; want: Pick<Resources, 'cpus' | 'cpuSource' | 'ownProcessesOnly'>; warns?: RegExp }[] = [
    { name: 'LIVEKIT_CPU_REQUEST wins over the quota', capacity: 1.5, cpuRequest: '1.5', cgroup: quota1, want: { cpus: 1.5, cpuSource: 'LIVEKIT_CPU_REQUEST', ownProcessesOnly: true } },
    { name: 'LIVEKIT_CPU_REQUEST outside a cgroup still measures only our processes', capacity: 2, cpuRequest: '2', cgroup: {}, want: { cpus: 2, cpuSource: 'LIVEKIT_CPU_REQUEST', ownProcessesOnly: true } },
    { name: 'a bad LIVEKIT_CPU_REQUEST is ignored, with a warning naming it', capacity: 8, cpuRequest: 'lots', cgroup: quota1, want: { cpus: 1, cpuSource: 'cgroup', ownProcessesOnly: true }, warns: /^LIVEKIT_CPU_REQUEST: "lots"/ },
    { name: 'cpu_capacity outside a cgroup: host load still counts', capacity: 3, cgroup: {}, want: { cpus: 3, cpuSource: 'cpu_cost.cpu_capacity', ownProcessesOnly: false } },
    { name: 'cpu_capacity above the quota is kept, with a warning', capacity: 3, cgroup: quota1, want: { cpus: 3, cpuSource: 'cpu_cost.cpu_capacity', ownProcessesOnly: true }, warns: /^cpu_cost\.cpu_capacity: 3 cores is above .* quota of 1/ },
    { name: 'no capacity configured: the quota', capacity: 8, cgroup: quota1, want: { cpus: 1, cpuSource: 'cgroup', ownProcessesOnly: true } },
    { name: 'a quota of the whole machine or more limits nothing', capacity: 8, cgroup: { cpus: 16 }, want: { cpus: 8, cpuSource: 'host', ownProcessesOnly: false } },
    { name: 'nothing set: the machine, and its whole load', capacity: 8, cgroup: {}, want: { cpus: 8, cpuSource: 'host', ownProcessesOnly: false } },
  ];
  for (const c of table) {
    const r = chooseResources({ capacity: c.capacity, cpuRequest: c.cpuRequest, hostCpus: 8, cgroup: c.cgroup });
    t.same({ cpus: r.cpus, cpuSource: r.cpuSource, ownProcessesOnly: r.ownProcessesOnly }, c.want, c.name);
    if (c.warns) t.match(r.warnings, [c.warns], `${c.name}: warning`);
    else t.same(r.warnings, [], `${c.name}: no warning`);
  }
  const mem = chooseResources({ capacity: 8, hostCpus: 8, cgroup: { memoryLimit: GB, memoryUsage: MB, memoryGroup: { version: 2, dir: '/x' } } });
  t.same(mem.memory, { version: 2, dir: '/x', limit: GB }, 'a memory limit is budgeted against');
  t.equal(chooseResources({ capacity: 8, hostCpus: 8, cgroup: {} }).memory, undefined, 'no limit: the host\'s MemAvailable');
});

const cost: CpuCostConfig = {
  capacity: 2, maxCpuUtilization: 0.8, maxMemory: 0, memoryCost: 0, roomCompositeCpuCost: 4, audioRoomCompositeCpuCost: 1,
  sdkAudioRoomCompositeCpuCost: 1, webCpuCost: 4, audioWebCpuCost: 1, participantCpuCost: 2, trackCompositeCpuCost: 1,
  trackCpuCost: 0.5, maxPulseClients: 60, cpuKillGraceSec: 30,
};
const track = (id: string) => new StartEgressRequest({ egressId: id, request: { case: 'track', value: new TrackEgressRequest({ trackId: 'TR' }) } });

t.test('admission under a quota: a saturated host does not count, the node\'s own processes do', async (t) => {
  const table: { name: string; ownCpu?: number; want: number }[] = [
    { name: 'host load counts without a quota (2 of 2 cores busy)', want: 1 * 0.8 - 2 - 0.5 },
    { name: 'under a quota only our supervisor\'s 0.1 cores count', ownCpu: 0.1, want: 1 * 0.8 - 0.1 - 0.5 },
  ];
  for (const c of table) {
    const m: Measurements = { load: 1, ownCpu: c.ownCpu, jobUsage: () => undefined, availableMemory: () => 16 * GB };
    const a = new Admission(cost, m, { machineCpus: 2, capacity: 1 });
    t.equal(a.capacity, 1, `${c.name}: the resolved capacity, not the config's`);
    t.ok(a.reserve('EG_1', track('EG_1')));
    t.equal(a.available(), c.want, c.name);
  }
});

t.test('own processes: the supervisor\'s tree, less the jobs\' process groups', async (t) => {
  const p = (pid: number, ppid: number, pgid = pid): ProcSample => ({ pid, ppid, pgid, cpuSeconds: 0, rssBytes: 0 });
  const samples = [p(1, 0), p(10, 1), p(11, 10), p(12, 11, 11), p(13, 10, 10), p(14, 13, 14), p(20, 1), p(21, 20)];
  // 10 is the supervisor; 11 leads a job's group (12 in it); 14 is a grandchild in no job's group.
  t.same(ownProcesses(samples, 10, new Set([11])).map((s) => s.pid).sort(), [10, 13, 14]);
  t.same(ownProcesses(samples, 99, new Set()), [], 'no such root: nothing');
});

t.test('monitor: cgroup memory is the limit less its working set; the host\'s once the group is gone', async (t) => {
  const root = fakeRoot(t, { files: { 'g/memory.current': `${300 * MB}`, 'g/memory.stat': `inactive_file ${100 * MB}\n` } });
  const m = new CpuMonitor(() => new Map(), undefined, { cpus: 1, ownProcessesOnly: true, memory: { version: 2, dir: path.join(root, 'g'), limit: GB } });
  t.equal(m.availableMemory(), GB - 200 * MB);
  writeFileSync(path.join(root, 'g/memory.current'), `${900 * MB}`);
  t.equal(m.availableMemory(), GB - 800 * MB, 're-read on every call');
  rmSync(path.join(root, 'g'), { recursive: true });
  t.ok(Math.abs(m.availableMemory() - availableMemory()) < 256 * MB, 'falls back to MemAvailable');
});

t.test('monitor: under a quota, a busy process in our tree is our load; in a job\'s group it is the job\'s', async (t) => {
  // A real busy process stands in for the supervisor's tree: a child of this test.
  const hog = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore', detached: true });
  t.teardown(() => hog.kill('SIGKILL'));
  await new Promise((r) => hog.once('spawn', r));
  const measure = async (groups: Map<string, number[]>) => {
    const m = new CpuMonitor(() => groups, undefined, { cpus: 2, ownProcessesOnly: true }, process.pid);
    m.sample();
    await new Promise((r) => setTimeout(r, 300));
    m.sample();
    await new Promise((r) => setTimeout(r, 700));
    m.sample();
    return m;
  };
  // A busy core's worth at most, and less on a loaded machine: compare, do not expect a full core.
  const own = await measure(new Map());
  t.ok(own.ownCpu! > 0.1, `the hog is our own load: ${own.ownCpu}`);
  t.equal(own.load, Math.min(1, own.ownCpu! / 2), 'load is our use of our 2 cores');
  const job = await measure(new Map([['EG_hog', [hog.pid!]]]));
  const jobCpu = job.jobUsage('EG_hog')?.cpu ?? 0;
  t.ok(jobCpu > 0.1, `in a job's group it is the job's: ${jobCpu}`);
  t.ok(job.ownCpu! < jobCpu / 2, `and not counted twice: ${job.ownCpu}`);
});
