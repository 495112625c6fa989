// Admission inside a CPU- and memory-limited cgroup (v1), on a host saturated by processes outside it:
// the node must count its quota and its own processes, not the host's load, and budget memory from
// the group's limit. Needs root and the v1 cpu and memory hierarchies; CI has both.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { groupDirs, parseMountInfo, parseProcCgroup, workingSet } from '../../supervisor/src/admission/cgroup.ts';

const CPU_ROOT = '/sys/fs/cgroup/cpu';
const MEMORY_ROOT = '/sys/fs/cgroup/memory';
const MB = 1024 ** 2;
// Above the 1 GB admission headroom, or no job would fit at all.
const MEMORY_LIMIT = 1536 * MB;
const REPO = path.resolve(import.meta.dirname, '../..');

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const skip = writable(CPU_ROOT) && writable(MEMORY_ROOT)
  ? false
  : `needs ${CPU_ROOT} and ${MEMORY_ROOT} writable (cgroup v1, as root) to create a test group`;

t.test('in a 1-core, 1.5 GB cgroup beside a CPU hog: capacity and memory are the group\'s, the hog does not count', { skip }, async (t) => {
  // The test group goes below this process's own, so the child stays within whatever limits the runner has.
  const self = { groups: parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8')), mounts: parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')) };
  const parent = (c: 'cpu' | 'memory') => {
    const g = groupDirs(c, self.groups, self.mounts);
    if (g?.version !== 1) throw new Error(`no v1 ${c} hierarchy for this process`);
    return g.dirs[0]!;
  };
  const name = `egress-test-${process.pid}`;
  const cpuDir = path.join(parent('cpu'), name);
  const memoryDir = path.join(parent('memory'), name);
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : (c.once('exit', r), c.kill('SIGKILL'))))));
    for (const dir of [cpuDir, memoryDir]) {
      // The kernel frees a group a moment after its last task exits.
      for (let i = 0; i < 20; i++) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
          await sleep(100);
        }
      }
    }
  });
  mkdirSync(cpuDir);
  mkdirSync(memoryDir);
  writeFileSync(path.join(cpuDir, 'cpu.cfs_period_us'), '100000');
  writeFileSync(path.join(cpuDir, 'cpu.cfs_quota_us'), '100000');
  writeFileSync(path.join(memoryDir, 'memory.limit_in_bytes'), String(MEMORY_LIMIT));

  // Outside the group: one busy process per core saturates the host. Niced, so that suites running
  // beside this one barely notice; /proc/stat still counts nice time as busy.
  const hogs = Math.max(2, os.availableParallelism());
  for (let i = 0; i < hogs; i++) children.push(spawn('nice', ['-n', '19', process.execPath, '-e', 'for(;;){}'], { stdio: 'ignore' }));
  await sleep(1000);

  // The node's own wiring: config, then resources, monitor and admission as the service builds them.
  // One 0.25-core job is reserved so the node is busy and its load counts (an idle node takes any job).
  const code = `
    import { readFileSync } from 'node:fs';
    import { TrackEgressRequest } from '@livekit/protocol';
    import { StartEgressRequest } from './shared/src/proto/rpc.ts';
    import { loadConfig } from './supervisor/src/config/load.ts';
    import { detectResources, describeResources } from './supervisor/src/admission/resources.ts';
    import { CpuMonitor } from './supervisor/src/admission/monitor.ts';
    import { Admission } from './supervisor/src/admission/admission.ts';
    const body = 'api_key: k\\napi_secret: s\\nws_url: ws://localhost\\nredis: { address: "localhost:6379" }\\ncpu_cost: { track_cpu_cost: 0.25 }\\n';
    const { config } = loadConfig({ body, env: process.env });
    const resources = detectResources(config.cpuCost);
    const monitor = new CpuMonitor(() => new Map(), undefined, resources);
    const admission = new Admission(config.cpuCost, monitor, { capacity: resources.cpus });
    const track = (id) => new StartEgressRequest({ egressId: id, request: { case: 'track', value: new TrackEgressRequest({ trackId: 'TR' }) } });
    monitor.start(500);
    const first = admission.reserve('EG_first', track('EG_first'));
    await new Promise((r) => setTimeout(r, 3000));
    console.log(JSON.stringify({
      cgroup: readFileSync('/proc/self/cgroup', 'utf8'),
      resources: describeResources(resources),
      first,
      capacity: admission.capacity,
      available: admission.available(),
      acceptsSecond: admission.canAccept(track('EG_second')),
      availableMemory: monitor.availableMemory(),
      hostLoad: monitor.hostLoad,
      ownCpu: monitor.ownCpu,
    }));
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `;
  const env = { ...process.env };
  delete env.LIVEKIT_CPU_REQUEST;
  // The shell joins the groups, then becomes the node: every line the node runs is inside them.
  const join = `echo $$ > ${cpuDir}/cgroup.procs && echo $$ > ${memoryDir}/cgroup.procs && exec "$0" "$@"`;
  const child = spawn('sh', ['-c', join, process.execPath, '--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, env, stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.once('exit', (code) => reject(new Error(`in-group node exited (${code}) before reporting: ${out}`)));
  });
  // The group's usage now, while the node that measured it is still in it.
  const usage = Number(readFileSync(path.join(memoryDir, 'memory.usage_in_bytes'), 'utf8'));
  const inactive = usage - workingSet(usage, readFileSync(path.join(memoryDir, 'memory.stat'), 'utf8'), 1);
  child.stdin!.end();
  const r = JSON.parse(line) as {
    cgroup: string; first: boolean; resources: { cpuSource: string; memorySource: string }; capacity: number; available: number;
    acceptsSecond: boolean; availableMemory: number; hostLoad: number; ownCpu: number;
  };
  t.comment(JSON.stringify({ ...r, cgroup: undefined, usage, inactive }));

  t.match(r.cgroup, new RegExp(`cpu[^\\n]*:.*/${name}\\n`), 'the node ran in the cpu group');
  t.match(r.cgroup, new RegExp(`memory:.*/${name}\\n`), 'and in the memory group');
  t.ok(r.first, 'the idle node took the first job');
  t.ok(r.hostLoad > 0.7, `the host was busy while it measured: ${r.hostLoad.toFixed(2)}`);
  t.equal(r.capacity, 1, 'capacity is the 1-core quota, not the machine\'s cores');
  t.match(r.resources.cpuSource, /^cgroup \(.*cpu\.cfs_quota_us\)$/, 'and the log says so');
  // 1 core × 0.8 − the reserved 0.25 − the node's own (idle) processes.
  t.ok(r.available > 0.8 - 0.25 - 0.15 && r.available <= 0.55, `available ${r.available.toFixed(3)} cores: the hog outside is not charged`);
  t.ok(r.ownCpu < 0.15, `the node's own load: ${r.ownCpu} cores`);
  t.ok(r.acceptsSecond, 'a second 0.25-core job is accepted');
  t.match(r.resources.memorySource, new RegExp(`^cgroup \\(.*${name}, limit ${MEMORY_LIMIT} bytes\\)$`), 'memory is budgeted from the group');
  const expected = MEMORY_LIMIT - usage;
  t.ok(
    r.availableMemory >= expected - 16 * MB && r.availableMemory <= expected + inactive + 16 * MB,
    `available memory ${(r.availableMemory / MB).toFixed(1)} MB ≈ limit − usage ${(expected / MB).toFixed(1)} MB (+ ${(inactive / MB).toFixed(1)} MB reclaimable cache)`,
  );
  t.ok(r.availableMemory < MEMORY_LIMIT - 16 * MB, 'the node\'s own use is taken out of the limit');
});
