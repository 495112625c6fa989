// What the node's HTTP endpoints and the `egress jobs` CLI can see and do. The service implements it;
// the endpoints never reach into the service's internals.
import type { EgressInfo } from '@livekit/protocol';
import type { ProcessReport } from '@egress/shared/ipc.ts';

export interface JobView {
  egressId: string;
  /** room_composite, web, participant, track_composite, track, template, media */
  requestType: string;
  /** The request as protobuf JSON, credentials redacted. */
  request: unknown;
  info: EgressInfo;
  /** Every process the job's handler reported: the handler itself first. */
  processes: ProcessReport[];
  /** gst-launch-1.0 command lines, as started. */
  commandLines: string[];
  /** Cores used, measured over the last second; undefined until measured. */
  cpu?: number;
  memoryBytes?: number;
}

export interface NodeCounters {
  claimsWon: number;
  claimsLost: number;
  handlerCrashes: number;
  /** Finished handlers by result: completed, failed, aborted, limit_reached, stopped_cpu, killed_cpu, process_error … */
  results: Record<string, number>;
}

export interface NodeView {
  readonly nodeId: string;
  jobs(): JobView[];
  job(egressId: string): JobView | undefined;
  /** Graceful: EOS, files finalized. Resolves with the EgressInfo at that moment. */
  stopJob(egressId: string): Promise<EgressInfo>;
  /** SIGKILL the handler and everything it started; the job ends FAILED and is recovered. */
  killJob(egressId: string): void;
  /** The job's pipeline graph in Graphviz dot, from its handler. */
  pipelineDot(egressId: string): Promise<string>;
  /** Cores the node could still give to new work (the Go health endpoint's `CpuLoad`). */
  availableCpu(): number;
  /** System-wide CPU load, 0..1. */
  cpuLoad(): number;
  canAcceptWork(): boolean;
  readonly draining: boolean;
  readonly redisHealthy: boolean;
  readonly counters: NodeCounters;
}
