// One interface for every storage back-end. A back-end uploads one local file to one storage path;
// retries, backup storage and ordering live above it (uploader.ts), the same for all back-ends.
// What back-ends share lives here too, so that loading one never loads another's SDK.

export interface UploadResult {
  /** Where the object can be fetched: a URL (presigned when configured) or a local path. */
  location: string;
  size: number;
}

/** The names the Go egress uses in `<Backend> upload failed: …`. */
export type BackendKind = 'S3' | 'GCP' | 'Azure' | 'AliOSS' | 'Local';

export interface StorageBackend {
  /** Names the back-end and its bucket/container in messages, never a credential: `S3 bucket "rec"`. */
  readonly description: string;
  /** Optional: the back-end's name in error texts; when absent, the first word of `description`. */
  readonly kind?: BackendKind;
  /** Optional: true when upload() moves the local file away (local disk), so nothing is left to delete. */
  readonly movesSource?: boolean;
  /** Uploads `localPath` to `storagePath` (the storage prefix is already applied). Throws on failure. */
  upload(localPath: string, storagePath: string, contentType: string): Promise<UploadResult>;
  /** Optional: releases sockets and agents; the back-end is not used afterwards. */
  close?(): Promise<void>;
}

/** Content types by extension, as the Go egress sends them. */
export const CONTENT_TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.ogg': 'audio/ogg',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
  '.ts': 'video/mp2t',
  '.m3u8': 'application/x-mpegurl',
  '.jpeg': 'image/jpeg',
  '.json': 'application/json',
  '.raw': 'audio/x-raw',
};

/**
 * Path part of a location URL the way Go's url.URL{Path: p}.String() writes it: a leading "/",
 * and everything but unreserved characters and `$&+,/:;=@` percent-encoded (UTF-8).
 */
export function escapeLocationPath(storagePath: string): string {
  const path = storagePath.startsWith('/') ? storagePath : `/${storagePath}`;
  let out = '';
  for (const byte of Buffer.from(path, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~$&+,/:;=@]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
