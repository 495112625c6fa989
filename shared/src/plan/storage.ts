// Where an output's files go: the request's own upload target or the server's, merged by the Go
// egress's rules (egress-behaviour §5.4). Pure, so the supervisor resolves and checks it at plan time
// (a PermissionDenied or a refused local disk is answered before anything starts).
import path from 'node:path/posix';
import { AliOSSUpload, AzureBlobUpload, GCPUpload, S3Upload, type ProxyConfig as ProtoProxy } from '@livekit/protocol';
import type { Config, ProxyConfig, S3Config, StorageConfig } from '../config/types.ts';
import { errors } from '../errors.ts';

export type RequestUpload = S3Upload | GCPUpload | AzureBlobUpload | AliOSSUpload;

/**
 * A resolved target: a StorageConfig with exactly one of s3/azure/gcp/alioss, or `localDir` for
 * local disk (local_output_dir when no storage is configured).
 */
export type StorageTarget = StorageConfig;

export type StorageResolveConfig = Pick<Config, 'storage' | 'disallowLocalStorage' | 'localOutputDir'> &
  Partial<Pick<Config, 's3AssumeRole'>>;

// Defaults for request S3 targets whose server config has no retry settings (§5.4 rule 2).
export const REQUEST_S3_MAX_RETRIES = 5;
export const REQUEST_S3_MAX_RETRY_DELAY_MS = 5_000;
export const REQUEST_S3_MIN_RETRY_DELAY_MS = 100;

export const ASSUME_ROLE_DISABLED = errors.assumeRoleDisabled().message;

const hasProvider = (s: StorageConfig | undefined): s is StorageConfig => !!(s && (s.s3 || s.azure || s.gcp || s.alioss));

export const isLocalTarget = (t: StorageTarget): boolean => !hasProvider(t);

const proxyFrom = (p: ProtoProxy | undefined): ProxyConfig | undefined =>
  p && p.url ? { url: p.url, username: p.username, password: p.password } : undefined;

/**
 * The storage target for one output. `upload` is the output's own upload oneof (v1) or
 * output.storage → request.storage (v2), whichever the caller found first.
 * Throws `request has missing or invalid field: output` (400) for local disk under
 * disallow_local_storage, and PermissionDenied (403) for AssumeRole without server keys.
 */
export function resolveStorage(upload: RequestUpload | undefined, config: StorageResolveConfig): StorageTarget {
  const server = config.storage;
  const common = { prefix: server?.prefix ?? '', generatePresignedUrl: server?.generatePresignedUrl ?? false };
  if (!upload) {
    if (hasProvider(server)) return server;
    if (config.disallowLocalStorage) throw errors.invalidField('output');
    return { ...common, localDir: config.localOutputDir || '.' };
  }
  if (upload instanceof S3Upload) return { ...common, s3: requestS3(upload, config) };
  if (upload instanceof GCPUpload) {
    const proxy = proxyFrom(upload.proxy);
    const endpoint = server?.gcp?.endpoint;
    return { ...common, gcp: { credentialsJson: upload.credentials, bucket: upload.bucket, ...(proxy ? { proxy } : {}), ...(endpoint ? { endpoint } : {}) } };
  }
  if (upload instanceof AzureBlobUpload) {
    // The server's endpoint override (Azurite, sovereign clouds) carries over for the same account only.
    const s = server?.azure;
    const endpoint = s?.endpoint && s.accountName === upload.accountName ? s.endpoint : undefined;
    return {
      ...common,
      azure: { accountName: upload.accountName, accountKey: upload.accountKey, containerName: upload.containerName, ...(endpoint ? { endpoint } : {}) },
    };
  }
  if (upload instanceof AliOSSUpload) {
    return { ...common, alioss: { accessKey: upload.accessKey, secret: upload.secret, region: upload.region, endpoint: upload.endpoint, bucket: upload.bucket } };
  }
  throw errors.invalidField('output');
}

function requestS3(u: S3Upload, config: StorageResolveConfig): S3Config {
  const server = config.storage?.s3;
  const role = config.s3AssumeRole;
  let accessKey = u.accessKey;
  let secret = u.secret;
  let assumeRoleArn = u.assumeRoleArn;
  let assumeRoleExternalId = u.assumeRoleExternalId;
  if (!assumeRoleArn && role?.arn) {
    assumeRoleArn = role.arn;
    assumeRoleExternalId = role.externalId;
  }
  if (assumeRoleArn && !accessKey) {
    if (!role?.accessKey) throw errors.assumeRoleDisabled();
    accessKey = role.accessKey;
    secret = role.secret;
  }
  const proxy = proxyFrom(u.proxy);
  const stsEndpoint = server?.stsEndpoint || role?.stsEndpoint;
  return {
    accessKey,
    secret,
    sessionToken: u.sessionToken,
    assumeRoleArn,
    assumeRoleExternalId,
    region: u.region,
    endpoint: u.endpoint,
    bucket: u.bucket,
    forcePathStyle: u.forcePathStyle,
    ...(proxy ? { proxy } : {}),
    maxRetries: server?.maxRetries || REQUEST_S3_MAX_RETRIES,
    maxRetryDelayMs: server?.maxRetryDelayMs || REQUEST_S3_MAX_RETRY_DELAY_MS,
    minRetryDelayMs: server?.minRetryDelayMs || REQUEST_S3_MIN_RETRY_DELAY_MS,
    metadata: { ...u.metadata },
    tagging: u.tagging,
    contentDisposition: u.contentDisposition,
    ...(stsEndpoint ? { stsEndpoint } : {}),
  };
}

/** The storage key: `join(prefix, path)`, as Go's path.Join (an empty prefix leaves the path as it is). */
export function storageKey(target: Pick<StorageConfig, 'prefix'>, storagePath: string): string {
  return target.prefix ? path.join(target.prefix, storagePath) : storagePath;
}

