// The debug server on `debug_handler_port` (127.0.0.1 unless `debug_bind_address` says otherwise).
//   GET  /jobs                → summary of every active job
//   GET  /jobs/:id            → one job in full (request, info, processes, command lines, usage)
//   GET  /jobs/:id/dot        → the pipeline graph, text/vnd.graphviz
//   GET  /gst_pipeline/:id    → the same, Go's route and Go's plain-text errors (`malformed url`, `egress not found`)
//   POST /jobs/:id/stop       → graceful stop; 200 {"info": …} once finalized
//   POST /jobs/:id/kill       → SIGKILL the handler and its processes; 202 {"killed": id}
// Requests in the view are already redacted; nothing from the config is ever served.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { EgressStatus } from '@livekit/protocol';
import type { Logger } from '@egress/shared/logging.ts';
import type { JobView, NodeView } from '../service/node-view.ts';
import { errorMessage, httpStatusOf, pathnameOf, rejectMethod, sendJson, sendText } from './util.ts';

export const DOT_CONTENT_TYPE = 'text/vnd.graphviz';

const GET = ['GET', 'HEAD'] as const;
const POST = ['POST'] as const;

export interface JobSummary {
  egressId: string;
  requestType: string;
  status: string;
  startedAt: string | null;
  pids: number[];
  cpu: number | null;
  memoryBytes: number | null;
}

export interface JobDetail {
  egressId: string;
  requestType: string;
  status: string;
  request: unknown;
  info: unknown;
  processes: { pid: number; pgid: number; name: string; commandLine: string }[];
  commandLines: string[];
  cpu: number | null;
  memoryBytes: number | null;
}

export const statusName = (status: EgressStatus): string => EgressStatus[status] ?? String(status);

/** EgressInfo times are Unix nanoseconds; 0 means not yet. */
export const nsToIso = (ns: bigint): string | null => (ns > 0n ? new Date(Number(ns / 1_000_000n)).toISOString() : null);

export function jobSummary(job: JobView): JobSummary {
  return {
    egressId: job.egressId,
    requestType: job.requestType,
    status: statusName(job.info.status),
    startedAt: nsToIso(job.info.startedAt),
    pids: job.processes.map((p) => p.pid),
    cpu: job.cpu ?? null,
    memoryBytes: job.memoryBytes ?? null,
  };
}

export function jobDetail(job: JobView): JobDetail {
  return {
    egressId: job.egressId,
    requestType: job.requestType,
    status: statusName(job.info.status),
    request: job.request,
    info: job.info.toJson(),
    processes: job.processes.map(({ pid, pgid, name, commandLine }) => ({ pid, pgid, name, commandLine })),
    commandLines: [...job.commandLines],
    cpu: job.cpu ?? null,
    memoryBytes: job.memoryBytes ?? null,
  };
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const notFound = (): HttpError => new HttpError(404, 'egress not found');

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'malformed url');
  }
}

export function debugHandler(view: NodeView, log: Logger): RequestListener {
  const existing = (id: string): JobView => {
    const job = view.job(id);
    if (job === undefined) throw notFound();
    return job;
  };

  const sendDot = async (res: ServerResponse, id: string): Promise<void> => {
    existing(id);
    const dot = await view.pipelineDot(id);
    sendText(res, 200, dot, DOT_CONTENT_TYPE);
  };

  // Go's route: errors in plain text, as http.Error writes them.
  const goPipeline = async (req: IncomingMessage, res: ServerResponse, segments: string[]): Promise<void> => {
    if (rejectMethod(req, res, GET)) return;
    if (segments.length < 2) {
      sendText(res, 404, 'malformed url\n');
      return;
    }
    try {
      await sendDot(res, decodeSegment(segments[1]!));
    } catch (err) {
      const status = err instanceof HttpError ? err.status : httpStatusOf(err);
      if (status >= 500) log.warn('debug: pipeline dot failed', { error: errorMessage(err) });
      sendText(res, status, `${errorMessage(err)}\n`);
    }
  };

  const jobs = async (req: IncomingMessage, res: ServerResponse, segments: string[]): Promise<void> => {
    // /jobs, /jobs/:id, /jobs/:id/<action>; a trailing slash is ignored.
    if (segments.length > 1 && segments[segments.length - 1] === '') segments = segments.slice(0, -1);
    if (segments.length === 1) {
      if (rejectMethod(req, res, GET, true)) return;
      sendJson(res, 200, view.jobs().map(jobSummary));
      return;
    }
    const id = decodeSegment(segments[1]!);
    const action = segments.length === 3 ? segments[2] : segments.length === 2 ? '' : undefined;
    switch (action) {
      case '':
        if (rejectMethod(req, res, GET, true)) return;
        sendJson(res, 200, jobDetail(existing(id)));
        return;
      case 'dot':
        if (rejectMethod(req, res, GET, true)) return;
        await sendDot(res, id);
        return;
      case 'stop': {
        if (rejectMethod(req, res, POST, true)) return;
        existing(id);
        log.info('debug: stopping egress', { egressId: id });
        const info = await view.stopJob(id);
        sendJson(res, 200, { info: info.toJson() });
        return;
      }
      case 'kill':
        if (rejectMethod(req, res, POST, true)) return;
        existing(id);
        log.warn('debug: killing egress', { egressId: id });
        view.killJob(id);
        sendJson(res, 202, { killed: id });
        return;
      default:
        throw new HttpError(404, 'not found');
    }
  };

  return (req, res) => {
    const pathname = pathnameOf(req);
    const segments = pathname === undefined ? [] : pathname.split('/').slice(1);
    const route = async (): Promise<void> => {
      if (pathname === undefined) throw new HttpError(400, 'malformed url');
      if (segments[0] === 'gst_pipeline') return goPipeline(req, res, segments);
      if (segments[0] === 'jobs') return jobs(req, res, segments);
      throw new HttpError(404, 'not found');
    };
    route().catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : httpStatusOf(err);
      if (status >= 500) log.warn('debug: request failed', { url: req.url, error: errorMessage(err) });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, status, { error: errorMessage(err) });
    });
  };
}
