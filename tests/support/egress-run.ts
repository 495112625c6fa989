// One egress driven the way a user drives it: started through livekit-server-sdk, recorded while
// `during` runs, stopped, and waited for until it ends. Times are wall-clock ms, so outputs can be
// compared with what really happened.
import { EgressStatus, type EgressInfo } from '@livekit/protocol';
import type { EgressClient } from 'livekit-server-sdk';
import { waitFor } from './wait.ts';

export interface EgressRun {
  started: EgressInfo;
  final: EgressInfo;
  /** When livekit-server first listed it ACTIVE. */
  activeAt: number;
  /** When StopEgress was sent (or the egress ended by itself). */
  stopAt: number;
}

export const egressInfo = async (client: EgressClient, egressId: string): Promise<EgressInfo | undefined> => (await client.listEgress({ egressId }))[0];

export async function waitForStatus(client: EgressClient, egressId: string, done: (s: EgressStatus) => boolean, what: string, timeoutMs = 30_000): Promise<EgressInfo> {
  return waitFor(what, async () => {
    const info = await egressInfo(client, egressId);
    return info && done(info.status) ? info : undefined;
  }, timeoutMs);
}

export async function runEgress(
  client: EgressClient,
  start: () => Promise<EgressInfo>,
  opts: {
    /** Recorded time after ACTIVE, unless `during` ends the egress itself. */
    recordMs: number;
    /** Runs once ACTIVE; recording stops when both it and recordMs are done. A returned time is when the egress was ended by other means. */
    during?: (info: EgressInfo) => Promise<number | void>;
    /** The egress ends by itself (participant left, track gone): no StopEgress is sent. */
    endsByItself?: boolean;
  },
): Promise<EgressRun> {
  const started = await start();
  await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_ACTIVE, `${started.egressId} ACTIVE`, 40_000);
  const activeAt = Date.now();
  // A failing step must not leave the egress running past its test.
  const [endedAt] = await Promise.all([opts.during?.(started), new Promise((r) => setTimeout(r, opts.recordMs))]).catch(async (err: unknown) => {
    await client.stopEgress(started.egressId).catch(() => undefined);
    throw err;
  });
  let stopAt = endedAt ?? Date.now();
  if (!opts.endsByItself) {
    await client.stopEgress(started.egressId);
    stopAt = Date.now();
  }
  const final = await waitForStatus(client, started.egressId, (s) => s >= EgressStatus.EGRESS_COMPLETE, `${started.egressId} ended`, 60_000);
  return { started, final, activeAt, stopAt };
}
