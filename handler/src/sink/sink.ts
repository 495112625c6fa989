// What every output is to the controller: a media consumer that starts, fails on its own or
// finishes (EOS, finalize, upload), and writes its results into the EgressInfo.
import type { EgressInfo } from '@livekit/protocol';
import type { EgressError } from '@egress/shared/errors.ts';
import type { OutputReport, ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { Config } from '@egress/shared/config/types.ts';
import type { PipelineConfig } from '@egress/shared/plan/pipeline-config.ts';
import type { MediaConsumer } from '../media/job-media.ts';
import type { Uploader } from '../upload/uploader.ts';

export interface SinkContext {
  plan: PipelineConfig;
  config: Config;
  log: Logger;
  /** The job's scratch directory. */
  scratch: string;
  process(p: ProcessReport): void;
  output(o: OutputReport): void;
  /** Wall time (Unix ns) of PTS 0: when the first frame arrived. */
  startedAtNs(): bigint;
  /** Marks EgressInfo.backup_storage_used. */
  backupUsed(): void;
  /** An output's results changed while recording: send livekit-server an update. */
  changed(): void;
  /** Ends the job gracefully (its stream outputs were all removed). */
  endJob(reason: string): void;
}

export interface Sink extends MediaConsumer {
  /** Connects or prepares; throws the request's error if the output cannot work at all. */
  start(): Promise<void>;
  /** Settles with the error that broke this output while recording. */
  readonly failed: Promise<EgressError>;
  /**
   * Completes the output: the media has ended at `endNs` on the timeline (undefined: nothing
   * was recorded), `startedAtNs` is the wall time of PTS 0. Adds its results to `info`.
   */
  finish(info: EgressInfo, timing: { startedAtNs: bigint; endNs: bigint } | undefined): Promise<void>;
  /** Hard stop (the job is failing): kills processes, keeps what is on disk. */
  abort(): void;
  /** For the manifest and for files uploaded with it: the uploader this output used. */
  readonly uploader?: Uploader;
  /** Gst command lines and the newest pipeline graph, for inspect and profiling bundles. */
  debug(): { commandLines: string[]; dotDir?: string };
}
