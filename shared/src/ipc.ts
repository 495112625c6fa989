// The typed channel between the supervisor and a handler (Node's fork IPC, never stdout).
// EgressInfo and StartEgressRequest travel as base64 protobuf so that int64 times and oneofs survive.
import type { Config } from './config/types.ts';
import type { ErrorCode } from './errors.ts';
import type { PipelineConfig, SegmentsOutputPlan } from './plan/pipeline-config.ts';

export interface ProcessReport {
  pid: number;
  /** Process group to kill; equals pid for processes started detached. */
  pgid: number;
  name: string;
  commandLine: string;
}

/** A file a handler is writing: enough for a recovery handler to finalize it if the handler dies. */
/**
 * An output's files on disk, reported when it starts, so that a recovery handler can finalize and
 * upload them if the handler dies. The job's request and config say which storage a file goes to;
 * a segments output carries its resolved plan (storage, names).
 */
export type OutputReport =
  | {
      type: 'file';
      /** Where the handler writes it (its scratch directory). */
      localPath: string;
      /** The storage path, as FileInfo.filename. */
      filename: string;
    }
  | {
      type: 'segments';
      /** The local directory of the segments and of the journal of those already stored. */
      dir: string;
      plan: SegmentsOutputPlan;
    };

/** Supervisor → handler. */
export type SupervisorMessage =
  /** `plan`: planPipeline's result, computed once by the supervisor; the handler does not re-plan. */
  | { type: 'start'; request: string; config: Config; plan: PipelineConfig }
  | { type: 'stop'; id: number; reason: string }
  | { type: 'updateStream'; id: number; add: string[]; remove: string[] }
  | { type: 'inspect'; id: number }
  /** To a spare on a node that serves web sources: start a browser for the next web job (source/web/warm.ts). */
  | { type: 'prewarm'; config: Config };

/** Handler → supervisor. */
export type HandlerMessage =
  | { type: 'ready' }
  /** A spare (handler_pool) has loaded its media modules and waits for a job. */
  | { type: 'warm' }
  | { type: 'heartbeat' }
  | { type: 'process'; process: ProcessReport }
  | { type: 'output'; output: OutputReport }
  | { type: 'status'; info: string }
  /** The job started to end (a stop, a limit, its source): its pipeline must finish within the stop deadline. */
  | { type: 'ending' }
  /** Its pipeline finished (gst exited): what is left is uploading, which takes as long as it takes. */
  | { type: 'finalized' }
  | { type: 'reply'; id: number; info?: string; dot?: string; error?: { code: ErrorCode; message: string } }
  | { type: 'finished'; info: string };

export const HEARTBEAT_INTERVAL_MS = 1000;
