// An HLS segments output (egress-behaviour §4.4, §11.4): a branch of the job's encoder cutting MPEG-TS
// segments with splitmuxsink. Each segment is uploaded as soon as it closes; the playlists take it
// strictly in order and only once it is stored, so a playlist never names a segment that is not there.
// At the end both playlists are closed (ENDLIST) with what was stored, and SegmentsInfo is filled.
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SegmentsInfo, type EgressInfo } from '@livekit/protocol';
import { EgressError, errors, toEgressError } from '@egress/shared/errors.ts';
import type { SegmentsOutputPlan } from '@egress/shared/plan/pipeline-config.ts';
import type { GstElementMessage } from '../gst/runner.ts';
import type { SegmentsBranch } from '../pipeline/encode.ts';
import { createUploader, type Uploader } from '../upload/uploader.ts';
import type { ManifestPlaylist } from '../upload/uploader.ts';
import type { Encoder, GstBranch } from './encoder.ts';
import { eventPlaylist, livePlaylist, type StoredSegment } from './hls-playlist.ts';
import { segmentName } from './output-names.ts';
import type { Sink, SinkContext } from './sink.ts';

/** gst's name for the local segment files; the stored names are given at upload. */
export const LOCAL_SEGMENTS = 'seg_%05d.ts';
/**
 * One JSON line per segment stored, after its upload (and one with the start time first): what a
 * recovery handler needs to close the playlists if this handler dies, since stored segments are
 * deleted locally.
 */
export const JOURNAL = 'journal.jsonl';

export type JournalLine = { startedAtNs: string } | { uri: string; storagePath: string; durationS: number; pdtMs: number; location: string; size: number };

/** The EVENT playlist is re-uploaded at least this often (and the live one after every segment). */
const EVENT_PLAYLIST_MAX_AGE_MS = 60_000;
const NS_PER_MS = 1_000_000n;
/** The reference's max_upload_queue: minutes of segments that may wait for storage (900 of 4 s). */
const MAX_UPLOAD_QUEUE_MINUTES = 60;

export class SegmentsSink implements Sink, GstBranch {
  readonly failed: Promise<EgressError>;
  private fail!: (e: EgressError) => void;
  uploader?: Uploader;
  private readonly dir: string;
  /** Running time (ns) at which each open fragment began, by local path. */
  private readonly opened = new Map<string, bigint>();
  private index = 0;
  /** Stored segments, in order; the playlists list exactly these. */
  private readonly stored: (StoredSegment & { location: string; storagePath: string; size: number })[] = [];
  /** Playlist appends, strictly in segment order, each after its segment's upload. */
  private chain: Promise<void> = Promise.resolve();
  private eventUploadedAt = 0;
  private sinceEventUpload = 0;
  private playlistVersion = 0;
  private broken = false;
  private playlistLocation = '';
  private pendingUploads = 0;

  constructor(
    private readonly ctx: SinkContext,
    private readonly output: SegmentsOutputPlan,
    private readonly encoder: Encoder,
    outputIndex: number,
  ) {
    this.failed = new Promise((r) => (this.fail = r));
    this.dir = path.join(ctx.scratch, `segments-${outputIndex}`);
    encoder.add(this);
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.uploader = await createUploader(this.output.storage, this.ctx.config.backup, { logger: this.ctx.log, onBackupUsed: () => this.ctx.backupUsed() });
    this.ctx.output({ type: 'segments', dir: this.dir, plan: this.output });
  }

  private journal(line: JournalLine): Promise<void> {
    return appendFile(path.join(this.dir, JOURNAL), `${JSON.stringify(line)}\n`);
  }

  branch(name: string): SegmentsBranch {
    return { type: 'segments', name, location: path.join(this.dir, LOCAL_SEGMENTS), segmentDurationS: this.output.segmentDurationS };
  }

  /** Every fragment opened has closed, once the encoder has ended its inputs (the EOS hang check). */
  drained(): boolean {
    return this.index > 0 && this.opened.size === 0;
  }

  message(m: GstElementMessage): void {
    const local = m.fields.location;
    const runningTime = BigInt(m.fields['running-time'] ?? '0');
    if (!local) return;
    if (m.name === 'splitmuxsink-fragment-opened') this.opened.set(local, runningTime);
    else if (m.name === 'splitmuxsink-fragment-closed') this.closed(local, runningTime);
  }

  private closed(local: string, endRt: bigint): void {
    const startRt = this.opened.get(local) ?? endRt;
    this.opened.delete(local);
    if (this.broken) return;
    if (this.pendingUploads >= (MAX_UPLOAD_QUEUE_MINUTES * 60) / this.output.segmentDurationS) {
      this.broken = true;
      this.fail(errors.segmentQueueFull());
      return;
    }
    const index = this.index++;
    if (index === 0) this.chain = this.chain.then(() => this.journal({ startedAtNs: String(this.ctx.startedAtNs()) }));
    const wallMs = Number((this.ctx.startedAtNs() + startRt) / NS_PER_MS);
    const uri = segmentName(this.output.segmentPrefix, this.output.suffix, index, wallMs);
    const storagePath = this.output.storageDir + uri;
    this.pendingUploads++;
    // One after another: storage receives them in order, even the last two that close together at EOS.
    const upload = this.uploader!.enqueue(local, storagePath, 'video/mp2t', { order: 'segments' }).finally(() => this.pendingUploads--);
    const segment = { uri, storagePath, durationS: Number(endRt - startRt) / 1e9, programDateTime: new Date(wallMs) };
    this.chain = this.chain.then(async () => {
      if (this.broken) return;
      try {
        const done = await upload;
        this.stored.push({ ...segment, location: done.location, size: done.size });
        await this.journal({ uri, storagePath, durationS: segment.durationS, pdtMs: wallMs, location: done.location, size: done.size });
      } catch (err) {
        this.broken = true;
        this.fail(toEgressError(err));
        return;
      }
      await this.publishPlaylists(false).catch((err: Error) => this.ctx.log.warn('playlist upload failed', { error: err.message }));
    });
  }

  /** Writes and uploads the playlists: live after every segment, EVENT on the §11.4 schedule, both at the end. */
  private async publishPlaylists(ended: boolean): Promise<{ event: string; live?: string }> {
    const target = this.output.segmentDurationS;
    this.sinceEventUpload++;
    const hours = Math.floor((Date.now() - Number(this.ctx.startedAtNs() / NS_PER_MS)) / 3_600_000);
    const eventDue = ended || this.stored.length === 1 || this.sinceEventUpload >= 1 + hours || Date.now() - this.eventUploadedAt >= EVENT_PLAYLIST_MAX_AGE_MS;
    const uploads: Promise<string | undefined>[] = [];
    if (eventDue) {
      this.sinceEventUpload = 0;
      this.eventUploadedAt = Date.now();
      uploads.push(this.uploadPlaylist(this.output.playlistName, eventPlaylist(this.stored, target, ended)));
    } else {
      uploads.push(Promise.resolve(undefined));
    }
    if (this.output.livePlaylistName) uploads.push(this.uploadPlaylist(this.output.livePlaylistName, livePlaylist(this.stored, target, ended)));
    const [event, live] = await Promise.all(uploads);
    return { event: event ?? '', ...(live ? { live } : {}) };
  }

  /** Each version goes to a file of its own, so an upload in flight never reads a half-written one. */
  private async uploadPlaylist(name: string, text: string): Promise<string> {
    const local = path.join(this.dir, `${this.playlistVersion++}-${name.replace(/[^\w.-]/g, '_')}`);
    await writeFile(local, text);
    const done = await this.uploader!.enqueue(local, this.output.storageDir + name, 'application/x-mpegurl', { order: name });
    return done.location;
  }

  async finish(info: EgressInfo, timing: { startedAtNs: bigint; endNs: bigint } | undefined): Promise<void> {
    await this.encoder.finish().catch(() => undefined);
    if (!timing || !this.encoder.started) return;
    // gst has exited and every fragment message has been read: the chain holds the last segment.
    await this.chain;
    const result = new SegmentsInfo({
      playlistName: this.output.storageDir + this.output.playlistName,
      livePlaylistName: this.output.livePlaylistName ? this.output.storageDir + this.output.livePlaylistName : '',
      startedAt: timing.startedAtNs,
      endedAt: timing.startedAtNs + timing.endNs,
      duration: timing.endNs,
      segmentCount: BigInt(this.stored.length),
      size: BigInt(this.stored.reduce((sum, s) => sum + s.size, 0)),
    });
    info.segmentResults.push(result);
    if (info.result.case === undefined && this.ctx.plan.outputs.length === 1) info.result = { case: 'segments', value: result };
    if (this.broken) return;
    const { event, live } = await this.publishPlaylists(true).catch((err: unknown) => {
      throw new EgressError('internal', `segments: final playlist upload failed: ${toEgressError(err).message}`);
    });
    result.playlistLocation = event;
    this.playlistLocation = event;
    result.livePlaylistLocation = live ?? '';
  }

  /** For the manifest. */
  manifestPlaylist(): ManifestPlaylist | undefined {
    if (!this.playlistLocation) return undefined;
    return { location: this.playlistLocation, segments: this.stored.map((s) => ({ filename: s.storagePath, location: s.location })) };
  }

  /** Storage directory of the manifest. */
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
