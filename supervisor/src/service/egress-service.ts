// The node's psrpc face: bids for StartEgress, launches a handler per egress, and routes
// StopEgress/UpdateStream on each egress id's topic to its handler. It never touches media.
import { EgressInfo, StopEgressRequest, UpdateStreamRequest } from '@livekit/protocol';
import type { Config } from '@egress/shared/config/types.ts';
import { setFailed, isTerminal, nowNs } from '@egress/shared/egress-info.ts';
import { EgressError, errors } from '@egress/shared/errors.ts';
import type { Logger } from '@egress/shared/logging.ts';
import { planRequest, startingInfo } from '@egress/shared/plan/request.ts';
import type { Bus, Subscription } from '@egress/shared/psrpc/bus.ts';
import { RpcServer } from '@egress/shared/psrpc/server.ts';
import { ListActiveEgressRequest, ListActiveEgressResponse, StartEgressRequest } from '@egress/shared/proto/rpc.ts';
import { Admission } from '../admission/admission.ts';
import { HandlerProcess } from '../fleet/handler-process.ts';
import { IoClient } from '../io/io-client.ts';

interface Job {
  egressId: string;
  request: StartEgressRequest;
  info: EgressInfo;
  handler?: HandlerProcess;
  topics: Subscription[];
}

export class EgressService {
  private readonly server: RpcServer;
  private readonly io: IoClient;
  private readonly admission: Admission;
  private readonly jobs = new Map<string, Job>();
  private startSubscription?: Subscription;
  private listSubscription?: Subscription;
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly bus: Bus,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    this.server = new RpcServer(bus, log);
    this.io = new IoClient(bus, log, { createMs: config.ioCreateTimeoutMs, updateMs: config.ioUpdateTimeoutMs });
    this.admission = new Admission(config.cpuCost);
  }

  async start(): Promise<void> {
    this.listSubscription = await this.server.register(
      {
        service: 'EgressInternal',
        method: 'ListActiveEgress',
        requestType: ListActiveEgressRequest,
        queue: false,
        multi: true,
        handle: async () => new ListActiveEgressResponse({ egressIds: [...this.jobs.keys()] }),
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
        handle: (req) => this.startEgress(req),
      },
      this.config.clusterId,
    );
    this.log.info('egress node ready', { serverId: this.server.serverId, clusterId: this.config.clusterId });
  }

  get activeEgressIds(): string[] {
    return [...this.jobs.keys()];
  }

  /** Go's bid: no claim when we cannot take it, 0.5 when idle, 1.0 when busy, which packs work onto busy nodes. */
  private affinity(req: StartEgressRequest): number {
    if (this.draining || !this.bus.healthy || !this.io.healthy) return -1;
    if (!this.admission.canAccept(req)) return -1;
    return this.jobs.size === 0 ? 0.5 : 1;
  }

  private async startEgress(req: StartEgressRequest): Promise<EgressInfo> {
    if (this.draining) throw errors.shuttingDown();
    if (!req.egressId) throw errors.invalidField('egressID');
    if (this.jobs.has(req.egressId)) throw errors.alreadyExists();
    planRequest(req);
    if (!this.admission.reserve(req)) throw errors.notEnoughCpu();

    const log = this.log.child({ egressId: req.egressId });
    const job: Job = { egressId: req.egressId, request: req, info: startingInfo(req, nowNs()), topics: [] };
    this.jobs.set(job.egressId, job);
    try {
      // Handler topics first: a StopEgress may follow our answer at once.
      job.topics = await this.registerHandlerTopics(job);
      await this.io.createEgress(job.info);
      job.handler = new HandlerProcess(job.egressId, req.toBinary(), this.config, log, (info) => this.onStatus(job, info));
      void this.superviseUntilExit(job, job.handler, log);
      await job.handler.ready;
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

  private async superviseUntilExit(job: Job, handler: HandlerProcess, log: Logger): Promise<void> {
    const exit = await handler.exited;
    if (exit.kind === 'finished') {
      job.info = exit.info;
    } else if (!isTerminal(job.info.status)) {
      log.error('handler died', { reason: exit.reason });
      setFailed(job.info, new EgressError('internal', exit.reason));
    }
    if (isTerminal(job.info.status)) await this.io.updateEgress(job.info);
    log.info('egress ended', { status: job.info.status, error: job.info.error || undefined });
    await this.release(job);
  }

  private async release(job: Job): Promise<void> {
    await Promise.allSettled(job.topics.map((t) => t.close()));
    await this.io.flush(job.egressId);
    this.admission.release(job.request);
    this.jobs.delete(job.egressId);
    if (this.jobs.size === 0) this.idleWaiters.splice(0).forEach((w) => w());
  }

  private async registerHandlerTopics(job: Job): Promise<Subscription[]> {
    const forward = async (reason: string): Promise<EgressInfo> => {
      if (!job.handler) throw errors.egressNotFound();
      return job.handler.stop(reason);
    };
    return Promise.all([
      this.server.register(
        {
          service: 'EgressHandler',
          method: 'StopEgress',
          requestType: StopEgressRequest,
          queue: true,
          handle: () => forward('StopEgress API'),
        },
        job.egressId,
      ),
      this.server.register(
        {
          service: 'EgressHandler',
          method: 'UpdateStream',
          requestType: UpdateStreamRequest,
          queue: true,
          handle: async () => {
            throw new EgressError('invalid_argument', 'UpdateStream called on non-streaming egress');
          },
        },
        job.egressId,
      ),
    ]);
  }

  /** Stop bidding, let running jobs finish, then close. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.startSubscription?.close();
    if (this.jobs.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    await this.listSubscription?.close();
    await this.io.close();
  }

  /** Stop every job gracefully (EOS, files finalized), then drain. */
  async stopAll(reason: string): Promise<void> {
    this.draining = true;
    await Promise.allSettled([...this.jobs.values()].map((j) => j.handler?.stop(reason)));
    await this.drain();
  }

  killAll(reason: string): void {
    for (const job of this.jobs.values()) job.handler?.kill(reason);
  }
}
