// Alibaba Cloud OSS back-end (livekit/storage alioss.go) on ali-oss (OSS V1 signatures).
//
// Files above OSS_PART_SIZE go up as a multipart upload (OSS_PART_SIZE parts, OSS_PARALLEL at a
// time; aborted on failure so no parts are left behind), smaller ones with a single PUT carrying
// Content-MD5. `region` is accepted but not forwarded, as in Go: the endpoint names the region.
// An endpoint without a scheme is reached over https. The location is Go's
// `https://<bucket>.<endpoint host>/<key>`.

import { readFile, stat } from 'node:fs/promises';
import OSS from 'ali-oss';
import type { AliOssConfig } from '@egress/shared/config/types.ts';
import { escapeLocationPath, type StorageBackend, type UploadResult } from './backend.ts';
import { uploadFailed } from './redact-error.ts';

export const OSS_PART_SIZE = 5 * 1024 * 1024;
export const OSS_PARALLEL = 3;

/** urllib appends socket-pool statistics to network errors: keep `connect ECONNREFUSED …, PUT <url>`. */
function shorten(err: unknown): unknown {
  if (err instanceof Error) err.message = err.message.replace(/ -?\d+ \(connected: [\s\S]*$/, '');
  return err;
}

/** Go's location: `https://<bucket>.<endpoint without scheme>/<escaped key>`. */
export function aliOssLocation(bucket: string, endpoint: string, storagePath: string): string {
  const host = endpoint.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  return `https://${bucket}.${host}${escapeLocationPath(storagePath)}`;
}

/**
 * Initiate, OSS_PARALLEL part uploads at a time, complete. On any failure no new part starts, the
 * ones in flight are waited for, then the upload is aborted so no parts stay stored (ali-oss's own
 * multipartUpload returns on the first failed part while others still run, and never aborts).
 */
async function multipartUpload(oss: OSS, localPath: string, size: number, key: string, contentType: string): Promise<void> {
  const { uploadId } = await oss.initMultipartUpload(key, { mime: contentType });
  try {
    const count = Math.ceil(size / OSS_PART_SIZE);
    const parts: { number: number; etag: string }[] = [];
    let next = 1;
    let failure: { err: unknown } | undefined;
    const worker = async (): Promise<void> => {
      while (!failure && next <= count) {
        const n = next++;
        const start = (n - 1) * OSS_PART_SIZE;
        try {
          const { etag } = await oss.uploadPart(key, uploadId, n, localPath, start, Math.min(size, start + OSS_PART_SIZE));
          parts.push({ number: n, etag });
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(OSS_PARALLEL, count) }, worker));
    if (failure) throw failure.err;
    parts.sort((a, b) => a.number - b.number);
    await oss.completeMultipartUpload(key, uploadId, parts);
  } catch (err) {
    await oss.abortMultipartUpload(key, uploadId).catch(() => undefined);
    throw err;
  }
}

export function createAliOssBackend(cfg: AliOssConfig): StorageBackend {
  const description = `Ali OSS bucket "${cfg.bucket}"`;
  const secrets = [cfg.secret];

  let client: OSS | undefined;
  let configError: unknown;
  try {
    if (!cfg.endpoint) throw new Error('endpoint is required');
    if (!cfg.accessKey || !cfg.secret) throw new Error('access_key and secret are required');
    client = new OSS({
      endpoint: cfg.endpoint,
      secure: true,
      accessKeyId: cfg.accessKey,
      accessKeySecret: cfg.secret,
      bucket: cfg.bucket,
    });
  } catch (err) {
    configError = err;
  }

  const location = (storagePath: string): string => aliOssLocation(cfg.bucket, cfg.endpoint, storagePath);

  const backend: StorageBackend = {
    description,
    kind: 'AliOSS',
    async upload(localPath: string, storagePath: string, contentType: string): Promise<UploadResult> {
      if (!client) throw uploadFailed(backend, configError, secrets);
      let size: number;
      try {
        ({ size } = await stat(localPath));
        if (size > OSS_PART_SIZE) {
          await multipartUpload(client, localPath, size, storagePath, contentType);
        } else {
          // From memory (at most OSS_PART_SIZE): ali-oss then sends Content-MD5, which OSS checks.
          await client.put(storagePath, await readFile(localPath), { mime: contentType });
        }
      } catch (err) {
        throw uploadFailed(backend, shorten(err), secrets);
      }
      return { location: location(storagePath), size };
    },
  };
  return backend;
}
