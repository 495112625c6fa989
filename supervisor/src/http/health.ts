// The health endpoint on `health_port`.
//   any path but /healthz → 200 application/json, Go's shape: {"CpuLoad": <available cores>, "<egress_id>": {"Track": {...}}, …}
//                           plus our "ActiveJobs" and "CanAccept".
//   /healthz             → 200 `ok`, or 503 with the reason (redis unreachable, draining): for liveness/readiness probes.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { NodeView } from '../service/node-view.ts';
import { errorMessage, pathnameOf, sendJson, sendText } from './util.ts';

/** room_composite → RoomComposite: the Go StartEgressRequest oneof wrapper's field name. */
export const requestKind = (requestType: string): string =>
  requestType
    .split('_')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/** The node can take new work: the view says so and the node is not draining. */
export const canAccept = (view: NodeView): boolean => !view.draining && view.canAcceptWork();

export function healthStatus(view: NodeView): Record<string, unknown> {
  const jobs = view.jobs();
  const status: Record<string, unknown> = { CpuLoad: view.availableCpu() };
  for (const job of jobs) status[job.egressId] = { [requestKind(job.requestType)]: job.request };
  status.ActiveJobs = jobs.length;
  status.CanAccept = canAccept(view);
  return status;
}

/** Why /healthz fails, or undefined when healthy. */
export function unhealthyReason(view: NodeView): string | undefined {
  const reasons: string[] = [];
  if (!view.redisHealthy) reasons.push('redis unreachable');
  if (view.draining) reasons.push('draining');
  return reasons.length ? reasons.join(', ') : undefined;
}

export function healthHandler(view: NodeView): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    // Like Go, any method is answered; Node drops the body of a HEAD response.
    try {
      if (pathnameOf(req) === '/healthz') {
        const reason = unhealthyReason(view);
        if (reason === undefined) sendText(res, 200, 'ok');
        else sendText(res, 503, reason);
        return;
      }
      sendJson(res, 200, healthStatus(view));
    } catch (err) {
      sendText(res, 500, `${errorMessage(err)}\n`);
    }
  };
}
