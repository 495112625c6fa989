// A thumbnails output (egress-behaviour §4.5, §11.5): a branch of the job's encoder taking the raw video
// through videorate and jpegenc into multifilesink, one JPEG every capture_interval. Each file is
// renamed per the suffix rule and uploaded as soon as gst reports it, then deleted locally. The first
// upload that fails ends the job; later images are discarded.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ImagesInfo, type EgressInfo } from '@livekit/protocol';
import { errors, toEgressError, type EgressError } from '@egress/shared/errors.ts';
import type { ImageOutputPlan } from '@egress/shared/plan/pipeline-config.ts';
import type { GstElementMessage } from '../gst/runner.ts';
import type { ImagesBranch } from '../pipeline/encode.ts';
import { createUploader, type ManifestImage, type Uploader } from '../upload/uploader.ts';
import type { Encoder, GstBranch } from './encoder.ts';
import { imageName } from './output-names.ts';
import type { Sink, SinkContext } from './sink.ts';

const NS_PER_MS = 1_000_000n;
/** The reference's max_upload_queue: minutes of images that may wait for storage (at least 4 images). */
const MAX_UPLOAD_QUEUE_MINUTES = 60;

export class ImagesSink implements Sink, GstBranch {
  readonly failed: Promise<EgressError>;
  private fail!: (e: EgressError) => void;
  uploader?: Uploader;
  private readonly dir: string;
  private count = 0;
  private pending = 0;
  private broken = false;
  private readonly uploads: Promise<unknown>[] = [];
  private readonly stored: ManifestImage[] = [];

  constructor(
    private readonly ctx: SinkContext,
    private readonly output: ImageOutputPlan,
    private readonly encoder: Encoder,
    outputIndex: number,
  ) {
    this.failed = new Promise((r) => (this.fail = r));
    this.dir = path.join(ctx.scratch, `images-${outputIndex}`);
    encoder.add(this);
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.uploader = await createUploader(this.output.storage, this.ctx.config.backup, { logger: this.ctx.log, onBackupUsed: () => this.ctx.backupUsed() });
  }

  /** SDK sources with no size asked for take the video track's own size (its first frame's). */
  branch(name: string, firstFrame?: { width: number; height: number }): ImagesBranch {
    const size = this.output.width > 0 && this.output.height > 0 ? this.output : (firstFrame ?? { width: 0, height: 0 });
    return { type: 'images', name, location: path.join(this.dir, 'img_%05d.jpeg'), captureIntervalS: this.output.captureIntervalS, width: size.width, height: size.height };
  }

  message(m: GstElementMessage): void {
    const local = m.fields.filename;
    if (m.name !== 'GstMultiFileSink' || !local || this.broken) return;
    const limit = Math.max(Math.floor((MAX_UPLOAD_QUEUE_MINUTES * 60) / this.output.captureIntervalS), 4);
    if (this.pending >= limit) {
      this.failWith(errors.imageQueueFull(this.pending));
      return;
    }
    const index = this.count++;
    const wallMs = Number((this.ctx.startedAtNs() + BigInt(m.fields.timestamp ?? '0')) / NS_PER_MS);
    const storagePath = this.output.storageDir + imageName(this.output.prefix, this.output.suffix, index, wallMs);
    this.pending++;
    // One object overwritten: the uploads must land in order.
    const order = this.output.suffix === 'none_overwrite' ? 'image' : undefined;
    const upload = this.uploader!.enqueue(local, storagePath, 'image/jpeg', order ? { order } : {}).then(
      (done) => void this.stored.push({ filename: storagePath, timestamp: new Date(wallMs), location: done.location }),
      (err: unknown) => this.failWith(toEgressError(err)),
    );
    this.uploads.push(upload.finally(() => this.pending--));
  }

  private failWith(e: EgressError): void {
    if (this.broken) return;
    this.broken = true;
    this.fail(e);
  }

  async finish(info: EgressInfo, timing: { startedAtNs: bigint; endNs: bigint } | undefined): Promise<void> {
    await this.encoder.finish().catch(() => undefined);
    if (!timing || !this.encoder.started) return;
    await Promise.all(this.uploads);
    info.imageResults.push(
      new ImagesInfo({
        filenamePrefix: this.output.filenamePrefix,
        imageCount: BigInt(this.count),
        startedAt: timing.startedAtNs,
        endedAt: timing.startedAtNs + timing.endNs,
      }),
    );
  }

  /** For the manifest, in capture order. */
  manifestImages(): ManifestImage[] {
    return [...this.stored].sort((a, b) => +a.timestamp - +b.timestamp);
  }

  get storageDir(): string {
    return this.output.storageDir;
  }

  abort(): void {
    this.encoder.abort();
  }

  debug(): { commandLines: string[] } {
    return { commandLines: [] };
  }
}
