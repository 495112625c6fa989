// The "nothing lost" layer over the back-ends (egress-behaviour §12, §4.6, §13.3):
// - a stream of files (segments, images, playlists, the final file, the manifest), uploaded with
//   bounded concurrency; files sharing an `order` key upload one after another, in enqueue order;
// - transient failures (connection refused, 5xx, timeouts) are retried over a short window on top of
//   the SDK's own retries; then the backup storage takes the file (and, as in the Go egress, every
//   later file of this uploader);
// - a local file is deleted only after its upload is confirmed; when primary and backup both fail
//   it stays where it is and the error is `primary: …\nbackup: …` (invalid_argument, 400);
// - nothing that leaves here carries a credential (see redact-error.ts).
import { unlink, writeFile } from 'node:fs/promises';
import type { StorageConfig } from '@egress/shared/config/types.ts';
import { EgressError } from '@egress/shared/errors.ts';
import type { StorageBackend } from './backend.ts';
import { CONTENT_TYPES } from './backend.ts';
import { isTransient, kindOf, redact, StorageError, uploadFailed } from './redact-error.ts';
import { backendFor, storageKey, type StorageTarget } from './storage.ts';

export interface UploadLogger {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface RetryPolicy {
  /** Tries per storage (the first included). Default 3. */
  attempts: number;
  /** Wait before the second try; doubles each time. Default 2 s. */
  initialDelayMs: number;
  /** Cap on one wait. Default 8 s. */
  maxDelayMs: number;
  /** No new try starts later than this after the first one. Default 10 s. */
  windowMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, initialDelayMs: 2_000, maxDelayMs: 8_000, windowMs: 10_000 };
export const DEFAULT_CONCURRENCY = 4;

export interface Destination {
  backend: StorageBackend;
  /** storage.prefix of this destination; joined in front of every storage path. */
  prefix?: string;
}

export interface UploaderOptions {
  primary: Destination;
  backup?: Destination;
  /** Files uploaded at the same time. Default 4. */
  concurrency?: number;
  retry?: Partial<RetryPolicy>;
  /** After the first file that needed the backup, send the rest straight there (Go). Default true. */
  stickyBackup?: boolean;
  /** Extra strings to scrub from messages (every credential of the targets). */
  secrets?: string[];
  logger?: UploadLogger;
  /** Called once, when the backup storage took its first file (EgressInfo.backup_storage_used). */
  onBackupUsed?: () => void;
}

export interface EnqueueOptions {
  /** Files with the same key upload one at a time, in enqueue order (segments, then their playlist). */
  order?: string;
  /** Delete the local file once its upload is confirmed. Default true. */
  deleteAfterUpload?: boolean;
}

export interface UploadedFile {
  localPath: string;
  /** The path as given (reported filenames exclude the prefix). */
  storagePath: string;
  /** Where it was written: prefix + path on the storage that took it. */
  key: string;
  location: string;
  size: number;
  backupUsed: boolean;
}

/** Both storages failed (or the only one did): the file is still at `location` (its local path). */
export class UploadFailedError extends EgressError {
  constructor(
    message: string,
    readonly localPath: string,
    readonly storagePath: string,
    readonly primaryError: StorageError,
    readonly backupError?: StorageError,
  ) {
    super('invalid_argument', message);
    this.name = 'UploadFailedError';
  }

  get location(): string {
    return this.localPath;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A counting semaphore. */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export class Uploader {
  private readonly slots: Slots;
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly retry: RetryPolicy;
  private readonly pending = new Set<Promise<unknown>>();
  private onBackup = false;
  private backupReported = false;
  /** Local paths of files that could not be uploaded anywhere and were kept on disk. */
  readonly kept: string[] = [];

  constructor(private readonly opts: UploaderOptions) {
    this.slots = new Slots(Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY));
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
  }

  /** True once any file went to the backup storage. */
  get backupUsed(): boolean {
    return this.backupReported;
  }

  /**
   * Uploads `localPath` to `storagePath` (prefix applied here). Resolves once the file is stored;
   * rejects with an UploadFailedError when it could not be stored anywhere (the file is kept).
   */
  enqueue(localPath: string, storagePath: string, contentType = contentTypeFor(storagePath), options: EnqueueOptions = {}): Promise<UploadedFile> {
    const job = () => this.slots.run(() => this.uploadOne(localPath, storagePath, contentType, options.deleteAfterUpload ?? true));
    let result: Promise<UploadedFile>;
    if (options.order !== undefined) {
      const key = options.order;
      const prev = this.tails.get(key) ?? Promise.resolve();
      result = prev.then(job, job);
      const tail = result.catch(() => undefined);
      this.tails.set(key, tail);
      void tail.then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    } else {
      result = job();
    }
    const tracked = result.catch(() => undefined);
    this.pending.add(tracked);
    void tracked.then(() => this.pending.delete(tracked));
    return result;
  }

  /** Waits until every file enqueued so far has settled. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private async uploadOne(localPath: string, storagePath: string, contentType: string, deleteAfter: boolean): Promise<UploadedFile> {
    const { primary, backup } = this.opts;
    let primaryError: StorageError | undefined;
    if (!(this.onBackup && backup)) {
      const attempt = await this.tryDestination(primary, localPath, storagePath, contentType);
      if ('result' in attempt) return this.done(primary, attempt.result, localPath, storagePath, deleteAfter, false);
      primaryError = attempt.error;
      if (!backup) return this.fail(localPath, storagePath, primaryError, primaryError.message);
      this.opts.logger?.warn('primary upload failed, using backup storage', { storagePath, error: primaryError.message });
    }
    const attempt = await this.tryDestination(backup!, localPath, storagePath, contentType);
    if ('result' in attempt) {
      if (this.opts.stickyBackup ?? true) this.onBackup = true;
      if (!this.backupReported) {
        this.backupReported = true;
        this.opts.onBackupUsed?.();
      }
      return this.done(backup!, attempt.result, localPath, storagePath, deleteAfter, true);
    }
    // Sticky mode skipped the primary; the message still names both storages.
    primaryError ??= new StorageError(kindOf(primary.backend), `${kindOf(primary.backend)} upload failed: skipped after an earlier failure`, false);
    return this.fail(localPath, storagePath, primaryError, `primary: ${primaryError.message}\nbackup: ${attempt.error.message}`, attempt.error);
  }

  private async done(dest: Destination, r: { location: string; size: number; key: string }, localPath: string, storagePath: string, deleteAfter: boolean, backupUsed: boolean): Promise<UploadedFile> {
    // The upload is confirmed (the SDK call returned): only now may the local copy go.
    if (deleteAfter && !dest.backend.movesSource) {
      await unlink(localPath).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.opts.logger?.warn('could not delete uploaded file', { localPath, error: err.message });
      });
    }
    this.opts.logger?.debug('uploaded', { storagePath, location: this.scrub(r.location.split('?')[0]!), backupUsed });
    return { localPath, storagePath, key: r.key, location: r.location, size: r.size, backupUsed };
  }

  private fail(localPath: string, storagePath: string, primaryError: StorageError, message: string, backupError?: StorageError): never {
    this.kept.push(localPath);
    this.opts.logger?.warn('upload failed, file kept on disk', { localPath, storagePath, error: message });
    throw new UploadFailedError(message, localPath, storagePath, primaryError, backupError);
  }

  private scrub(text: string): string {
    return redact(text, this.opts.secrets ?? []);
  }

  /** Tries one storage with the outer retry policy; transient errors only are retried. */
  private async tryDestination(dest: Destination, localPath: string, storagePath: string, contentType: string): Promise<{ result: { location: string; size: number; key: string } } | { error: StorageError }> {
    const key = storageKey({ prefix: dest.prefix ?? '' }, storagePath);
    const started = Date.now();
    const { attempts, initialDelayMs, maxDelayMs, windowMs } = this.retry;
    for (let n = 1; ; n++) {
      try {
        const r = await dest.backend.upload(localPath, key, contentType);
        return { result: { ...r, key } };
      } catch (err) {
        const error = this.asStorageError(dest.backend, err);
        const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** (n - 1));
        const retry = n < attempts && isTransient(err) && Date.now() + delay - started <= windowMs;
        this.opts.logger?.[retry ? 'info' : 'warn']('upload attempt failed', { storagePath, attempt: n, retrying: retry, error: error.message });
        if (!retry) return { error };
        await sleep(delay);
      }
    }
  }

  private asStorageError(backend: StorageBackend, err: unknown): StorageError {
    const e = uploadFailed(backend, err, this.opts.secrets ?? []);
    // Back-ends of other authors may throw their own text: scrub it once more with our secrets.
    const scrubbed = this.scrub(e.message);
    return scrubbed === e.message ? e : new StorageError(e.kind, scrubbed, e.transient, e.status);
  }

  async close(): Promise<void> {
    await this.drain();
    await Promise.all([this.opts.primary.backend.close?.(), this.opts.backup?.backend.close?.()]);
  }
}

export function contentTypeFor(storagePath: string): string {
  const dot = storagePath.lastIndexOf('.');
  return (dot >= 0 && CONTENT_TYPES[storagePath.slice(dot).toLowerCase()]) || 'application/octet-stream';
}

/** Every credential string in a target, for scrubbing. */
export function targetSecrets(t: StorageConfig | undefined): string[] {
  if (!t) return [];
  return [
    t.s3?.secret, t.s3?.sessionToken, t.s3?.assumeRoleExternalId, t.s3?.proxy?.password,
    t.azure?.accountKey, t.gcp?.credentialsJson, t.gcp?.proxy?.password, t.alioss?.secret,
  ].filter((s): s is string => !!s);
}

/** An uploader for a resolved target and the config's `backup` (a storage block or a local dir). */
export async function createUploader(
  target: StorageTarget,
  backup: StorageConfig | undefined,
  opts: Omit<UploaderOptions, 'primary' | 'backup' | 'secrets'> & { secrets?: string[] } = {},
): Promise<Uploader> {
  return new Uploader({
    ...opts,
    primary: { backend: await backendFor(target), prefix: target.prefix },
    ...(backup ? { backup: { backend: await backendFor(backup), prefix: backup.prefix } } : {}),
    secrets: [...targetSecrets(target), ...targetSecrets(backup), ...(opts.secrets ?? [])],
  });
}

// ---------------------------------------------------------------------------------------------
// Manifest (§4.6)

export interface ManifestFile { filename: string; location: string }
export interface ManifestSegment { filename: string; location: string }
export interface ManifestPlaylist { location: string; segments: ManifestSegment[] }
export interface ManifestImage { filename: string; timestamp: Date | string; location: string }

export interface Manifest {
  egress_id?: string;
  room_id?: string;
  room_name?: string;
  url?: string;
  /** Unix nanoseconds. */
  started_at?: bigint | number;
  ended_at?: bigint | number;
  publisher_identity?: string;
  track_id?: string;
  track_kind?: string;
  track_source?: string;
  audio_track_id?: string;
  video_track_id?: string;
  files?: ManifestFile[];
  playlists?: ManifestPlaylist[];
  images?: ManifestImage[];
}

// Go's field order; every key is omitempty except an image's timestamp.
const MANIFEST_KEYS = [
  'egress_id', 'room_id', 'room_name', 'url', 'started_at', 'ended_at', 'publisher_identity', 'track_id',
  'track_kind', 'track_source', 'audio_track_id', 'video_track_id', 'files', 'playlists', 'images',
] as const;

/** Go's RFC 3339 with nanoseconds, trailing zeros trimmed (time.Time's JSON form), in UTC. */
export function rfc3339(t: Date | string): string {
  if (typeof t === 'string') return t;
  return t.toISOString().replace(/\.(\d*?)0+Z$/, (_, d: string) => (d ? `.${d}Z` : 'Z'));
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === 0 || v === 0n || (Array.isArray(v) && v.length === 0);
}

function encodeValue(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isInteger(v) ? v.toFixed(0) : String(v);
  if (v instanceof Date) return JSON.stringify(rfc3339(v));
  if (Array.isArray(v)) return `[${v.map(encodeValue).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([k, x]) => k === 'timestamp' || !isEmpty(x));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${k === 'timestamp' ? JSON.stringify(rfc3339(x as Date | string)) : encodeValue(x)}`).join(',')}}`;
  }
  // JSON.stringify leaves <, >, & alone (Go: SetEscapeHTML(false)); Go still escapes U+2028/9.
  return JSON.stringify(v).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** The manifest's JSON: Go's key order, empty keys left out, compact, trailing newline. */
export function manifestJson(m: Manifest): string {
  const parts: string[] = [];
  for (const key of MANIFEST_KEYS) {
    const v = m[key];
    if (isEmpty(v)) continue;
    const ordered = key === 'files' || key === 'playlists' || key === 'images' ? orderItems(key, v as unknown[]) : v;
    parts.push(`${JSON.stringify(key)}:${encodeValue(ordered)}`);
  }
  return `{${parts.join(',')}}\n`;
}

function orderItems(key: 'files' | 'playlists' | 'images', items: unknown[]): unknown[] {
  return items.map((x) => {
    if (key === 'files') { const f = x as ManifestFile; return { filename: f.filename, location: f.location }; }
    if (key === 'images') { const i = x as ManifestImage; return { filename: i.filename, timestamp: i.timestamp, location: i.location }; }
    const p = x as ManifestPlaylist;
    return { location: p.location, segments: p.segments.map((s) => ({ filename: s.filename, location: s.location })) };
  });
}

/**
 * Writes the manifest to `localPath` and uploads it to `storagePath` (next to the outputs).
 * Returns the manifest_location, or undefined when the upload failed (only logged, as in Go;
 * the JSON then stays at localPath).
 */
export async function writeManifest(uploader: Uploader, manifest: Manifest, localPath: string, storagePath: string, opts: { logger?: UploadLogger } = {}): Promise<string | undefined> {
  await writeFile(localPath, manifestJson(manifest));
  try {
    const r = await uploader.enqueue(localPath, storagePath, 'application/json', { deleteAfterUpload: false });
    return r.location;
  } catch (err) {
    opts.logger?.warn('manifest upload failed', { storagePath, error: (err as Error).message });
    return undefined;
  }
}
