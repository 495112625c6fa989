// The node's psrpc face: bids for StartEgress, launches a handler per egress, and routes
// StopEgress/UpdateStream on each egress id's topic to its handler. It never touches media.
import path from 'node:path';
import { EgressInfo, EgressStatus, StopEgressRequest, UpdateStreamRequest } from '@livekit/protocol';
import type { Config } from '@egress/shared/config/types.ts';
import { isTerminal, nowNs, setEndReason, setFailed } from '@egress/shared/egress-info.ts';
import { EgressError, errors } from '@egress/shared/errors.ts';
import { markReported } from '@egress/shared/journal.ts';
import type { Logger } from '@egress/shared/logging.ts';
import { newId } from '@egress/shared/psrpc/ids.ts';
import { unservedReason } from '@egress/shared/plan/capabilities.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import { planPipeline } from '@egress/shared/plan/plan.ts';
import { requestKind, startingInfo } from '@egress/shared/plan/request.ts';
import { redactRequest } from '@egress/shared/plan/redact.ts';
import type { Bus, Subscription } from '@egress/shared/psrpc/bus.ts';
import { RpcServer } from '@egress/shared/psrpc/server.ts';
import { ListActiveEgressRequest, ListActiveEgressResponse, StartEgressRequest } from '@egress/shared/proto/rpc.ts';
import { Admission } from '../admission/admission.ts';
import { CpuMonitor } from '../admission/monitor.ts';
import { OverloadGuard } from '../admission/overload.ts';
import { describeResources, detectResources } from '../admission/resources.ts';
import { HandlerPool } from '../fleet/handler-pool.ts';
import { HandlerProcess } from '../fleet/handler-process.ts';
import { IoClient } from '../io/io-client.ts';
import type { JobView, NodeCounters, NodeView } from './node-view.ts';
import { WebHost } from './web-host.ts';

interface Job {
  egressId: string;
  request: StartEgressRequest;
  requestType: string;
  info: EgressInfo;
  handler?: HandlerProcess;
  topics: Subscription[];
  /** Why we killed it, when we did: the error its FAILED EgressInfo carries. */
  killedFor?: EgressError;
  /** It has an RTMP/SRT output, which UpdateStream changes. */
  streaming: boolean;
}

export class EgressService implements NodeView {
  readonly nodeId = newId('SRV_').replace('SRV_', 'NE_');
  readonly counters: NodeCounters = { claimsWon: 0, claimsLost: 0, handlerCrashes: 0, results: {} };
  private readonly server: RpcServer;
  private readonly io: IoClient;
  private readonly monitor: CpuMonitor;
  private readonly admission: Admission;
  private readonly overload: OverloadGuard;
  private readonly pool: HandlerPool;
  private readonly running = new Map<string, Job>();
  private startSubscription?: Subscription;
  private listSubscription?: Subscription;
  private overloadTimer?: NodeJS.Timeout;
  private readonly web: WebHost;
  private drainingFlag = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly bus: Bus,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    this.server = new RpcServer(bus, log);
    this.io = new IoClient(bus, log, { createMs: config.ioCreateTimeoutMs, updateMs: config.ioUpdateTimeoutMs, retryWindowMs: config.ioUpdateRetryWindowMs });
    const resources = detectResources(config.cpuCost);
    for (const w of resources.warnings) log.warn(w);
    log.info('admission resources', describeResources(resources));
    this.monitor = new CpuMonitor(() => this.processGroups(), config.testOverrides.cpuLoad, resources);
    // Spare handlers are charged what they use, as any process of the node: their memory (measured
    // free memory) and their CPU (the measured load; under a quota, the node's own use). Idle, that
    // is memory only; a fixed CPU charge would break exact packing (two 0.5-core jobs on one core).
    this.web = new WebHost(config, log);
    this.pool = new HandlerPool(config.handlerPoolIdle, log, this.web.served.web && config.handlerPoolBrowser ? config : undefined);
    this.admission = new Admission(config.cpuCost, this.monitor, { holdReservations: config.testOverrides.holdReservations, capacity: resources.cpus });
    this.overload = new OverloadGuard(config.cpuCost.maxCpuUtilization, config.cpuCost.cpuKillGraceSec * 1000);
  }

  async start(): Promise<void> {
    this.monitor.start();
    this.overloadTimer = setInterval(() => this.checkOverload(), 1000);
    this.listSubscription = await this.server.register(
      {
        service: 'EgressInternal',
        method: 'ListActiveEgress',
        requestType: ListActiveEgressRequest,
        queue: false,
        multi: true,
        handle: async () => new ListActiveEgressResponse({ egressIds: [...this.running.keys()] }),
      },
      '',
    );
    this.startSubscription = await this.server.register(
      {
        service: 'EgressInternal',
        method: 'StartEgress',
        requestType: StartEgressRequest,
        queue: false,
        affinity: (req) => this.affinity(req),
        onClaimResult: (won) => void (won ? this.counters.claimsWon++ : this.counters.claimsLost++),
        handle: (req) => this.startEgress(req),
      },
      this.config.clusterId,
    );
    this.web.start((id) => this.running.has(id));
    // Jobs a node that died here left unreported; in the background, since they may take minutes.
    void import('../fleet/orphans.ts').then((m) =>
      m.recoverOrphans(this.config, { report: (info) => this.io.updateEgress(info), running: (id) => this.running.has(id), log: this.log }),
    );
    this.log.info('egress node ready', { nodeId: this.nodeId, serverId: this.server.serverId, clusterId: this.config.clusterId, capacity: this.admission.capacity });
    // The spare starts once the node is ready: loading a handler takes about a core for a second,
    // which the node's own start would otherwise compete with on a small machine.
    this.pool.start();
  }

  // ---- NodeView ----

  get draining(): boolean {
    return this.drainingFlag;
  }

  get redisHealthy(): boolean {
    return this.bus.healthy;
  }

  jobs(): JobView[] {
    return [...this.running.values()].map((j) => this.view(j));
  }

  job(egressId: string): JobView | undefined {
    const j = this.running.get(egressId);
    return j && this.view(j);
  }

  private view(j: Job): JobView {
    const usage = this.monitor.jobUsage(j.egressId);
    const processes = j.handler?.processes ?? [];
    return {
      egressId: j.egressId,
      requestType: j.requestType,
      request: redactRequest(j.request).toJson(),
      info: j.info,
      processes,
      commandLines: processes.filter((p) => p.name === 'gst-launch-1.0').map((p) => p.commandLine),
      cpu: usage?.cpu,
      memoryBytes: usage?.memoryBytes,
    };
  }

  async stopJob(egressId: string): Promise<EgressInfo> {
    const j = this.running.get(egressId);
    if (!j?.handler) throw errors.egressNotFound();
    return j.handler.stop('StopEgress API');
  }

  killJob(egressId: string, reason = 'killed through the debug endpoint'): void {
    const j = this.running.get(egressId);
    if (!j?.handler) throw errors.egressNotFound();
    this.kill(j, reason);
  }

  /** Like the Go egress's KillEgress: the job ends FAILED with permission_denied and the given text. */
  private kill(job: Job, reason: string): void {
    job.killedFor = new EgressError('permission_denied', reason);
    setEndReason(job.info, 'Process killed');
    job.handler?.kill(reason);
  }

  async pipelineDot(egressId: string): Promise<string> {
    const j = this.running.get(egressId);
    if (!j?.handler) throw errors.egressNotFound();
    return j.handler.inspect();
  }

  availableCpu(): number {
    return Math.max(0, this.admission.available());
  }

  cpuLoad(): number {
    return this.monitor.load;
  }

  canAcceptWork(): boolean {
    return !this.drainingFlag && this.bus.healthy && this.io.healthy;
  }

  // ---- psrpc ----

  /** Go's bid: no claim when we cannot take it, 0.5 when idle, 1.0 when busy, which packs work onto busy nodes. */
  private affinity(req: StartEgressRequest): number {
    // Only the node running it can answer a retry correctly (already_exists), so it always bids.
    if (this.running.has(req.egressId)) return 1;
    if (!this.canAcceptWork()) return -1;
    // A valid request this node cannot build: stay silent, so a node of a mixed fleet that can takes it.
    // An invalid one: bid as usual, so that the chosen node answers the planning error at once.
    const plan = this.tryPlan(req);
    if (plan && unservedReason(plan, this.web.served)) return -1;
    if (!this.admission.canAccept(req)) return -1;
    return this.running.size === 0 ? 0.5 : 1;
  }

  /** The plan, or undefined when planning refuses the request (startEgress then answers the error). */
  private tryPlan(req: StartEgressRequest): PipelineConfig | undefined {
    try {
      return planPipeline(req, this.config, new Date());
    } catch {
      return undefined;
    }
  }

  private async startEgress(req: StartEgressRequest): Promise<EgressInfo> {
    if (this.drainingFlag) throw errors.shuttingDown();
    if (!req.egressId) throw errors.invalidField('egressID');
    if (this.running.has(req.egressId)) throw errors.alreadyExists();
    // Planned again (the bid's plan may be stale by now): a bad request is refused before anything starts.
    const plan = planPipeline(req, this.config, new Date());
    const unserved = unservedReason(plan, this.web.served);
    if (unserved) throw new EgressError('unimplemented', unserved);
    if (!this.admission.reserve(req.egressId, req)) throw errors.notEnoughCpu();

    const log = this.log.child({ egressId: req.egressId });
    const job: Job = {
      egressId: req.egressId,
      request: req,
      requestType: requestKind(req) ?? 'unknown',
      info: startingInfo(req, nowNs(), plan),
      topics: [],
      streaming: plan.outputs.some((o) => o.type === 'stream'),
    };
    this.running.set(job.egressId, job);
    try {
      // Handler topics first: a StopEgress may follow our answer at once.
      job.topics = await this.registerHandlerTopics(job);
      await this.io.createEgress(job.info);
      const spare = this.pool.take();
      job.handler = new HandlerProcess(
        job.egressId,
        req.toBinary(),
        this.config,
        plan,
        log,
        {
          status: (info) => this.onStatus(job, info),
          output: (o) => log.debug('handler output', { output: o.type === 'file' ? o.filename : o.plan.storageDir + o.plan.playlistName }),
        },
        spare,
      );
      log.debug('handler', { pid: job.handler.pid, spare: !!spare });
      // Answered now, not at the handler's `ready`: livekit-server has the egress (CreateEgress), and a
      // handler that never gets ready is killed at its ready timeout and ends FAILED in superviseUntilExit.
      void this.superviseUntilExit(job, job.handler, log);
    } catch (err) {
      log.error('egress failed to start', { error: (err as Error).message });
      if (!job.handler) await this.release(job);
      throw err;
    }
    log.info('egress started', { request: req.request.case });
    return job.info.clone();
  }

  private onStatus(job: Job, info: EgressInfo): void {
    job.info = info;
    void this.io.updateEgress(info);
  }

  /** The one place a handler's end is handled: a clean finish, or a death followed by recovery. */
  private async superviseUntilExit(job: Job, handler: HandlerProcess, log: Logger): Promise<void> {
    const exit = await handler.exited;
    if (exit.kind === 'finished') {
      job.info = exit.info;
      this.count(EgressStatus[job.info.status].replace('EGRESS_', '').toLowerCase());
    } else {
      this.counters.handlerCrashes++;
      this.count('process_error');
      log.error('handler died', { reason: exit.reason, outputs: handler.outputs.length });
      // Loaded at the first death, not at start: recovery brings execa (about 100 modules).
      const { applyRecovery, recoverOutputs } = await import('../fleet/recovery.ts');
      const recovered = await recoverOutputs(handler.outputs, job.request.toBinary(), this.config);
      const count = applyRecovery(job.info, recovered);
      for (const e of recovered.errors) log.error('recovery problem', { error: e });
      setFailed(job.info, job.killedFor ?? new EgressError('internal', exit.reason));
      if (count) job.info.details = `End reason: Failure; ${count} output(s) recovered`;
    }
    if (isTerminal(job.info.status)) {
      await this.io.updateEgress(job.info);
      // A node restarted later must not report this job again (supervisor/src/fleet/orphans.ts).
      await markReported(path.join(this.config.tmpDir, job.egressId));
    }
    log.info('egress ended', { status: EgressStatus[job.info.status], error: job.info.error || undefined });
    await this.release(job);
  }

  private count(result: string): void {
    this.counters.results[result] = (this.counters.results[result] ?? 0) + 1;
  }

  private async release(job: Job): Promise<void> {
    await Promise.allSettled(job.topics.map((t) => t.close()));
    await this.io.flush(job.egressId);
    this.admission.release(job.egressId);
    this.running.delete(job.egressId);
    if (this.running.size === 0) this.idleWaiters.splice(0).forEach((w) => w());
  }

  private async registerHandlerTopics(job: Job): Promise<Subscription[]> {
    return Promise.all([
      this.server.register(
        {
          service: 'EgressHandler',
          method: 'StopEgress',
          requestType: StopEgressRequest,
          queue: true,
          handle: () => this.stopJob(job.egressId),
        },
        job.egressId,
      ),
      this.server.register(
        {
          service: 'EgressHandler',
          method: 'UpdateStream',
          requestType: UpdateStreamRequest,
          queue: true,
          handle: async (r: UpdateStreamRequest) => {
            if (!job.streaming) throw errors.notStreaming();
            if (!job.handler) throw errors.egressNotFound();
            return job.handler.updateStream(r.addOutputUrls, r.removeOutputUrls);
          },
        },
        job.egressId,
      ),
    ]);
  }

  private processGroups(): Map<string, number[]> {
    const groups = new Map<string, number[]>();
    for (const j of this.running.values()) groups.set(j.egressId, (j.handler?.processes ?? []).map((p) => p.pgid));
    return groups;
  }

  private checkOverload(): void {
    const loads = [...this.running.values()]
      .filter((j) => j.handler)
      .map((j) => ({ egressId: j.egressId, recording: j.info.status === EgressStatus.EGRESS_ACTIVE, cpu: this.monitor.jobUsage(j.egressId)?.cpu ?? 0, cost: this.admission.costOf(j.egressId) }));
    const action = this.overload.tick(this.monitor.load, loads, Date.now());
    if (!action) return;
    const job = this.running.get(action.egressId);
    if (!job?.handler) return;
    if (action.kind === 'stop') {
      this.log.warn('CPU overload: stopping the heaviest job', { egressId: action.egressId, load: this.monitor.load });
      this.count('stopped_cpu');
      job.handler.stop('CPU exhausted').catch(() => undefined);
    } else {
      this.log.error('CPU overload persists: killing the job', { egressId: action.egressId });
      this.count('killed_cpu');
      this.kill(job, `CPU exhausted: ${action.cpu.toFixed(2)} cores used`);
    }
  }

  // ---- shutdown ----

  /** Stop bidding, let running jobs finish, then close. */
  async drain(timeoutMs = this.config.drainTimeoutMs): Promise<void> {
    this.drainingFlag = true;
    await this.startSubscription?.close();
    if (this.running.size > 0) {
      const idle = new Promise<void>((r) => this.idleWaiters.push(r));
      if (timeoutMs > 0) {
        const timedOut = await Promise.race([idle.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs))]);
        if (timedOut) {
          this.log.warn('drain timeout: stopping the remaining jobs', { jobs: this.running.size });
          await this.stopAll('drain timeout');
          return;
        }
      } else {
        await idle;
      }
    }
    await this.close();
  }

  /** Stop every job gracefully (EOS, files finalized), wait for them, then close. */
  async stopAll(reason: string): Promise<void> {
    this.drainingFlag = true;
    await this.startSubscription?.close();
    await Promise.allSettled([...this.running.values()].map((j) => j.handler?.stop(reason)));
    if (this.running.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    await this.close();
  }

  private async close(): Promise<void> {
    clearInterval(this.overloadTimer);
    this.web.close();
    this.monitor.stop();
    await this.pool.close();
    await this.listSubscription?.close();
    await this.io.close();
  }

  killAll(reason: string): void {
    void this.pool.close();
    for (const job of this.running.values()) this.kill(job, reason);
  }
}
