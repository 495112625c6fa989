// Prometheus on `prometheus_port`: a dedicated registry whose values are read from the NodeView at scrape time.
// Names follow the Go egress where it has one (reference §6.9); the per-job and claim series are ours.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { processFaults } from '../process-faults.ts';
import type { NodeView } from '../service/node-view.ts';
import { canAccept } from './health.ts';
import { errorMessage, sendText } from './util.ts';

/** Every request type the Go egress labels `livekit_egress_requests` with; each is exported, at 0 when idle. */
export const REQUEST_TYPES = ['room_composite', 'web', 'participant', 'track_composite', 'track', 'template', 'media'] as const;

export interface MetricsOptions {
  /** Go's second const label; exported (possibly empty) as `cluster_id`. */
  clusterId?: string;
  /** Node.js process metrics (process_*, nodejs_*). Default true. */
  defaultMetrics?: boolean;
}

/**
 * A registry exposing the node's state. Const labels node_id (and cluster_id) on every series.
 * `counters.results` keys are results (`completed`), or `type:result` (`track:completed`) to also fill Go's `type` label.
 */
export function createMetricsRegistry(view: NodeView, opts: MetricsOptions = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node_id: view.nodeId, cluster_id: opts.clusterId ?? '' });
  const registers = [registry];

  new Gauge({
    name: 'livekit_egress_available',
    help: '1 when the node has no active egress',
    registers,
    collect() {
      this.set(view.jobs().length === 0 ? 1 : 0);
    },
  });
  new Gauge({
    name: 'livekit_egress_can_accept_request',
    help: '1 when the node would accept a new request',
    registers,
    collect() {
      this.set(canAccept(view) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'livekit_egress_is_disabled',
    help: '1 when the node is draining and accepts no new requests',
    registers,
    collect() {
      this.set(view.draining ? 1 : 0);
    },
  });
  new Gauge({
    name: 'livekit_node_cpu_load',
    help: 'System-wide CPU load, 0..1',
    labelNames: ['node_type'] as const,
    registers,
    collect() {
      this.set({ node_type: 'EGRESS' }, view.cpuLoad());
    },
  });
  new Gauge({
    name: 'livekit_egress_requests',
    help: 'Active egress by request type',
    labelNames: ['type'] as const,
    registers,
    collect() {
      const byType = new Map<string, number>(REQUEST_TYPES.map((type) => [type, 0]));
      for (const job of view.jobs()) byType.set(job.requestType, (byType.get(job.requestType) ?? 0) + 1);
      this.reset();
      for (const [type, n] of byType) this.set({ type }, n);
    },
  });
  new Counter({
    name: 'livekit_egress_handler_results_total',
    help: 'Finished handlers by result',
    labelNames: ['type', 'result'] as const,
    registers,
    collect() {
      this.reset();
      for (const [key, n] of Object.entries(view.counters.results)) {
        const colon = key.indexOf(':');
        if (colon < 0) this.inc({ result: key }, n);
        else this.inc({ type: key.slice(0, colon), result: key.slice(colon + 1) }, n);
      }
    },
  });
  new Gauge({
    name: 'livekit_egress_job_cpu_cores',
    help: 'Cores used by an egress (handler and its processes), over the last second',
    labelNames: ['egress_id', 'type'] as const,
    registers,
    collect() {
      this.reset();
      for (const job of view.jobs()) {
        if (job.cpu !== undefined) this.set({ egress_id: job.egressId, type: job.requestType }, job.cpu);
      }
    },
  });
  new Gauge({
    name: 'livekit_egress_job_memory_bytes',
    help: 'Memory used by an egress (handler and its processes)',
    labelNames: ['egress_id', 'type'] as const,
    registers,
    collect() {
      this.reset();
      for (const job of view.jobs()) {
        if (job.memoryBytes !== undefined) this.set({ egress_id: job.egressId, type: job.requestType }, job.memoryBytes);
      }
    },
  });
  new Counter({
    name: 'livekit_egress_claims_total',
    help: 'Start-request claims by outcome',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      this.reset();
      this.inc({ outcome: 'won' }, view.counters.claimsWon);
      this.inc({ outcome: 'lost' }, view.counters.claimsLost);
    },
  });
  new Counter({
    name: 'livekit_egress_handler_crashes_total',
    help: 'Handlers that exited without reporting a result',
    registers,
    collect() {
      this.reset();
      this.inc(view.counters.handlerCrashes);
    },
  });
  new Counter({
    name: 'livekit_egress_process_faults_total',
    help: 'Exceptions and rejections no code path handled; the node logged each and kept running',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      this.reset();
      this.inc({ kind: 'uncaught_exception' }, processFaults.uncaughtException);
      this.inc({ kind: 'unhandled_rejection' }, processFaults.unhandledRejection);
    },
  });

  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Every path and method serves the registry, like Go's promhttp handler. */
export function metricsHandler(registry: Registry): RequestListener {
  return (_req: IncomingMessage, res: ServerResponse) => {
    registry.metrics().then(
      (text) => sendText(res, 200, text, registry.contentType),
      (err: unknown) => sendText(res, 500, `${errorMessage(err)}\n`),
    );
  };
}
