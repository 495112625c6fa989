// What a starting node does with the scratch it finds in tmp_dir (supervisor/src/fleet/orphans.ts),
// for the cases the node-restart suite does not reach: reported scratch aging out, another live node's
// jobs, and scratch that is not an egress's. Recovering real files is the node-restart suite's.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EgressInfo } from '@livekit/protocol';
import { loadConfig } from '../../supervisor/src/config/load.ts';
import { recoverOrphans } from '../../supervisor/src/fleet/orphans.ts';
import { processStartTime, writeJournal, type Journal } from '../../shared/src/journal.ts';
import { encodeInfo, setComplete } from '../../shared/src/egress-info.ts';
import { startingInfo } from '../../shared/src/plan/request.ts';
import { StartEgressRequest } from '../../shared/src/proto/rpc.ts';
import { createLogger } from '../../shared/src/logging.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'orphans-'));
const { config } = loadConfig({ body: `api_key: k\napi_secret: s\nws_url: ws://127.0.0.1:7880\nredis: {address: 127.0.0.1:6379}\ntmp_dir: ${tmp}\ntmp_max_age: 1h\n`, env: {} });
const log = createLogger({ level: 'error', json: false });
const request = new StartEgressRequest({ egressId: 'EG_x', request: { case: 'track', value: {} as never } });

/** A journal whose handler and supervisor are both gone (pid 1 never has this start time). */
function journal(id: string, over: Partial<Journal> = {}): Journal {
  return { egressId: id, request: Buffer.from(request.toBinary()).toString('base64'), pid: 1, pidStart: -1, supervisorPid: 1, supervisorStart: -1, outputs: [], ...over };
}

async function scratch(id: string, j: Journal, ageMs = 0): Promise<string> {
  const dir = path.join(tmp, id);
  mkdirSync(dir, { recursive: true });
  await writeJournal(dir, j);
  if (ageMs) utimesSync(dir, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
  return dir;
}

t.test('reported scratch is removed once older than tmp_max_age, kept before', async (t) => {
  const old = await scratch('EG_old', journal('EG_old', { reported: true }), 2 * 3600_000);
  const young = await scratch('EG_young', journal('EG_young', { reported: true }), 60_000);
  const reported: EgressInfo[] = [];
  await recoverOrphans(config, { report: async (i) => void reported.push(i), running: () => false, log });
  t.notOk(existsSync(old), 'the 2 h old one is gone');
  t.ok(existsSync(young), 'the 1 min old one stays');
  t.equal(reported.length, 0, 'neither is reported again');
});

t.test('an orphan with its final status is reported FAILED once, keeping its results', async (t) => {
  const done = startingInfo(request, 1n);
  done.egressId = 'EG_final';
  setComplete(done);
  const dir = await scratch('EG_final', journal('EG_final', { final: encodeInfo(done) }));
  const reported: EgressInfo[] = [];
  const report = async (i: EgressInfo) => void reported.push(i);
  await recoverOrphans(config, { report, running: () => false, log });
  await recoverOrphans(config, { report, running: () => false, log });
  t.equal(reported.length, 1, 'reported once');
  t.equal(reported[0]?.error, 'recovered after node restart');
  t.ok(existsSync(dir), 'its scratch stays until it ages out');
});

t.test('not orphans: a job of a node that still runs, a job of this node, and directories that are not egresses', async (t) => {
  const me = { supervisorPid: process.pid, supervisorStart: processStartTime(process.pid)! };
  await scratch('EG_live', journal('EG_live', me));
  await scratch('EG_mine', journal('EG_mine'));
  mkdirSync(path.join(tmp, 'debug', 'EG_other'), { recursive: true });
  mkdirSync(path.join(tmp, 'EG_nojournal'), { recursive: true });
  const reported: EgressInfo[] = [];
  await recoverOrphans(config, { report: async (i) => void reported.push(i), running: (id) => id === 'EG_mine', log });
  t.same(reported.map((i) => i.egressId), [], 'nothing is reported');
});
