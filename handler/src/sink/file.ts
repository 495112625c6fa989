// A file output: a branch of the job's encoder (sink/encoder.ts) muxing into the planned container in
// the scratch directory; once gst has finalized it, the file is uploaded (local storage is a move)
// and its FileInfo added to the EgressInfo.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { FileInfo, type EgressInfo } from '@livekit/protocol';
import type { EgressError } from '@egress/shared/errors.ts';
import type { FileOutputPlan } from '@egress/shared/plan/pipeline-config.ts';
import type { FileBranch } from '../pipeline/encode.ts';
import { containerFor } from '../pipeline/file.ts';
import { contentTypeFor, createUploader, UploadFailedError, type Uploader } from '../upload/uploader.ts';
import type { Encoder, GstBranch } from './encoder.ts';
import type { Sink, SinkContext } from './sink.ts';

export class FileSink implements Sink, GstBranch {
  /** A file fails only with the encoder, which reports that itself. */
  readonly failed = new Promise<EgressError>(() => undefined);
  uploader?: Uploader;
  readonly localPath: string;

  /** `filename`: the storage path, both naming passes done; `mimeType`: the track's, for track egress. */
  constructor(
    private readonly ctx: SinkContext,
    private readonly output: FileOutputPlan,
    readonly filename: string,
    private readonly encoder: Encoder,
    private readonly mimeType?: string,
  ) {
    this.localPath = path.join(ctx.scratch, path.basename(filename));
    encoder.add(this);
  }

  async start(): Promise<void> {
    this.ctx.output({ type: 'file', localPath: this.localPath, filename: this.filename });
  }

  branch(name: string): FileBranch {
    return { type: 'file', name, fileType: this.output.fileType ?? containerFor(this.mimeType ?? ''), location: this.localPath };
  }

  async finish(info: EgressInfo, timing: { startedAtNs: bigint; endNs: bigint } | undefined): Promise<void> {
    // A failed encoder reports its own error; what it left on disk is still delivered.
    await this.encoder.finish().catch(() => undefined);
    if (!timing || !this.encoder.started) return;
    const file = new FileInfo({ filename: this.filename, startedAt: timing.startedAtNs, endedAt: timing.startedAtNs + timing.endNs, duration: timing.endNs });
    info.fileResults.push(file);
    if (info.result.case === undefined && this.ctx.plan.outputs.length === 1) info.result = { case: 'file', value: file };
    this.uploader = await createUploader(this.output.storage, this.ctx.config.backup, {
      logger: this.ctx.log,
      onBackupUsed: () => this.ctx.backupUsed(),
    });
    try {
      const uploaded = await this.uploader.enqueue(this.localPath, this.filename, contentTypeFor(this.filename));
      file.location = uploaded.location;
      file.size = BigInt(uploaded.size);
    } catch (err) {
      if (err instanceof UploadFailedError) {
        file.location = err.location;
        file.size = BigInt((await stat(err.location)).size);
      }
      throw err;
    }
  }

  abort(): void {
    this.encoder.abort();
  }

  debug(): { commandLines: string[] } {
    return { commandLines: [] };
  }
}
