// The typed channel between the supervisor and a handler (Node's fork IPC, never stdout).
// EgressInfo and StartEgressRequest travel as base64 protobuf so that int64 times and oneofs survive.
import type { Config } from './config/types.ts';
import type { ErrorCode } from './errors.ts';
import type { PipelineConfig } from './plan/pipeline-config.ts';

export interface ProcessReport {
  pid: number;
  /** Process group to kill; equals pid for processes started detached. */
  pgid: number;
  name: string;
  commandLine: string;
}

/** A file a handler is writing: enough for a recovery handler to finalize it if the handler dies. */
export interface OutputReport {
  /** Where the handler writes it (its scratch directory). */
  localPath: string;
  /** The storage path, as FileInfo.filename; the job's request and config say which storage. */
  filename: string;
}

/** Supervisor → handler. */
export type SupervisorMessage =
  /** `plan`: planPipeline's result, computed once by the supervisor; the handler does not re-plan. */
  | { type: 'start'; request: string; config: Config; plan: PipelineConfig }
  | { type: 'stop'; id: number; reason: string }
  | { type: 'inspect'; id: number };

/** Handler → supervisor. */
export type HandlerMessage =
  | { type: 'ready' }
  | { type: 'heartbeat' }
  | { type: 'process'; process: ProcessReport }
  | { type: 'output'; output: OutputReport }
  | { type: 'status'; info: string }
  | { type: 'reply'; id: number; info?: string; dot?: string; error?: { code: ErrorCode; message: string } }
  | { type: 'finished'; info: string };

export const HEARTBEAT_INTERVAL_MS = 1000;
