// S3 and S3-compatible storage (egress-behaviour §5.2, §5.3, §12.2): multipart uploads through
// @aws-sdk/lib-storage, the Go egress's retry settings, an optional HTTP CONNECT proxy, AssumeRole,
// and presigned GET URLs as locations.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { GetBucketLocationCommand, GetObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { ProxyConfig, S3Config } from '@egress/shared/config/types.ts';
import type { StorageBackend, UploadResult } from './backend.ts';
import { redact, StorageError, uploadFailed } from './redact-error.ts';

// The SDK warns once per process that releases after January 2027 need Node 22; the handler's
// stderr is its log, so that note is silenced unless the operator set the variable.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const DEFAULT_QUEUE_SIZE = 4;
/** Presigned URLs are valid for 7 days, the S3 maximum (Go: the same). */
export const PRESIGN_EXPIRY_SECONDS = 7 * 24 * 3600;
/** Bound on finding credentials through the default chain (env, profile, IMDS …). */
const CREDENTIAL_CHAIN_TIMEOUT_MS = 5_000;
const MAX_PARTS = 10_000;

// The AWS SDK's own defaults when the config carries none (Go: the standard retryer, 3 attempts, 20 s).
const SDK_DEFAULT_ATTEMPTS = 3;
const SDK_DEFAULT_MAX_DELAY_MS = 20_000;
const SDK_DEFAULT_MIN_DELAY_MS = 100;

export interface S3BackendOptions {
  /** Location becomes a presigned GET URL valid for 7 days. */
  generatePresignedUrl?: boolean;
  /** Part size for multipart uploads (≥ 5 MiB; raised when a file would need more than 10 000 parts). */
  partSize?: number;
  /** Parts uploaded in parallel. */
  queueSize?: number;
  /** TCP connect timeout per request. Default 10 s. */
  connectTimeoutMs?: number;
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date };
type CredentialProvider = () => Promise<Credentials>;

/**
 * The Go egress's retry policy as an SDK v3 RetryStrategyV2: `maxAttempts` tries in all, exponential
 * backoff from `minDelayMs` capped at `maxDelayMs` (with jitter); throttling, transient, 5xx, 409
 * and 429 are retried.
 */
export class S3RetryStrategy {
  readonly mode = 'standard';
  constructor(
    readonly attempts: number,
    readonly minDelayMs: number,
    readonly maxDelayMs: number,
  ) {}

  async maxAttempts(): Promise<number> {
    return this.attempts;
  }

  async acquireInitialRetryToken(): Promise<RetryToken> {
    return retryToken(0, 0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: { errorType?: string; error?: unknown }): Promise<RetryToken> {
    const count = token.getRetryCount() + 1;
    if (count >= this.attempts || !retryableS3(info)) throw new Error('No retry token available');
    const base = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** (count - 1));
    return retryToken(count, Math.round(base / 2 + (Math.random() * base) / 2));
  }

  recordSuccess(): void {}
}

interface RetryToken { getRetryCount(): number; getRetryDelay(): number }
const retryToken = (count: number, delay: number): RetryToken => ({ getRetryCount: () => count, getRetryDelay: () => delay });

function retryableS3(info: { errorType?: string; error?: unknown }): boolean {
  if (info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT' || info.errorType === 'SERVER_ERROR') return true;
  const status = (info.error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return status === 409 || status === 429 || (status !== undefined && status >= 500);
}

/** `https://` added when the endpoint has no scheme, no trailing slash. */
export function normalizeEndpoint(endpoint: string): string {
  const e = endpoint.trim().replace(/\/+$/, '');
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(e) ? e : `https://${e}`;
}

/** The plain object URL, as the Go egress reports it (§12.2). */
export function s3Location(cfg: Pick<S3Config, 'bucket' | 'endpoint' | 'forcePathStyle'>, key: string): string {
  if (!cfg.endpoint) return `https://${cfg.bucket}.s3.amazonaws.com/${key}`;
  const endpoint = normalizeEndpoint(cfg.endpoint);
  if (cfg.forcePathStyle) return `${endpoint}/${cfg.bucket}/${key}`;
  const u = new URL(endpoint);
  return `${u.protocol}//${cfg.bucket}.${u.host}${u.pathname.replace(/\/+$/, '')}/${key}`;
}

/** An http(s) agent that tunnels through the proxy with CONNECT (basic auth when a username is set). */
export function proxyAgent(proxy: ProxyConfig): HttpsProxyAgent<string> {
  const url = new URL(normalizeProxyUrl(proxy.url));
  if (proxy.username) {
    url.username = encodeURIComponent(proxy.username);
    url.password = encodeURIComponent(proxy.password);
  }
  return new HttpsProxyAgent(url.toString(), { keepAlive: true, maxSockets: 64 });
}

const normalizeProxyUrl = (u: string) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(u) ? u : `http://${u}`);

export function s3RequestHandler(cfg: Pick<S3Config, 'proxy'>, connectTimeoutMs = 10_000): NodeHttpHandler {
  if (cfg.proxy?.url) {
    const agent = proxyAgent(cfg.proxy);
    return new NodeHttpHandler({ httpAgent: agent, httpsAgent: agent, connectionTimeout: connectTimeoutMs });
  }
  return new NodeHttpHandler({
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
    connectionTimeout: connectTimeoutMs,
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Caches credentials until 5 minutes before they expire; concurrent callers share one fetch. */
function memoize(fetch: CredentialProvider): CredentialProvider {
  let current: Credentials | undefined;
  let pending: Promise<Credentials> | undefined;
  return async () => {
    if (current && (!current.expiration || current.expiration.getTime() - Date.now() > 300_000)) return current;
    pending ??= fetch()
      .then((c) => (current = c))
      .finally(() => (pending = undefined));
    return pending;
  };
}

export class S3Backend implements StorageBackend {
  readonly kind = 'S3' as const;
  readonly description: string;
  private client?: Promise<S3Client>;
  private readonly handler: NodeHttpHandler;
  private readonly secrets: string[];

  constructor(
    readonly cfg: S3Config,
    private readonly opts: S3BackendOptions = {},
  ) {
    const where = cfg.endpoint ? ` at ${redact(normalizeEndpoint(cfg.endpoint))}` : '';
    this.description = `S3 bucket "${cfg.bucket}"${where}`;
    this.handler = s3RequestHandler(cfg, opts.connectTimeoutMs);
    this.secrets = [cfg.secret, cfg.sessionToken, cfg.assumeRoleExternalId, cfg.proxy?.password ?? ''];
  }

  private region(): string {
    return this.cfg.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || '';
  }

  private retryStrategy(): S3RetryStrategy {
    const c = this.cfg;
    return new S3RetryStrategy(
      c.maxRetries > 0 ? c.maxRetries : SDK_DEFAULT_ATTEMPTS,
      c.minRetryDelayMs > 0 ? c.minRetryDelayMs : SDK_DEFAULT_MIN_DELAY_MS,
      c.maxRetryDelayMs > 0 ? c.maxRetryDelayMs : SDK_DEFAULT_MAX_DELAY_MS,
    );
  }

  /** Config keys → static credentials; none → the default chain (bounded); an ARN → AssumeRole with those. */
  private credentials(region: string): CredentialProvider {
    const c = this.cfg;
    let base: CredentialProvider;
    if (c.accessKey && c.secret) {
      const fixed: Credentials = { accessKeyId: c.accessKey, secretAccessKey: c.secret, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) };
      base = async () => fixed;
    } else {
      const chain = fromNodeProviderChain({ timeout: 1000, maxRetries: 1 });
      base = memoize(() => withTimeout(chain(), CREDENTIAL_CHAIN_TIMEOUT_MS, 'looking up AWS credentials'));
    }
    if (!c.assumeRoleArn) return base;
    const sts = new STSClient({
      region,
      credentials: base,
      requestHandler: this.handler,
      retryStrategy: this.retryStrategy(),
      ...(c.stsEndpoint ? { endpoint: normalizeEndpoint(c.stsEndpoint) } : {}),
    });
    return memoize(async () => {
      const out = await sts.send(new AssumeRoleCommand({
        RoleArn: c.assumeRoleArn,
        RoleSessionName: `egress-${Date.now()}`,
        ...(c.assumeRoleExternalId ? { ExternalId: c.assumeRoleExternalId } : {}),
      }));
      const k = out.Credentials;
      if (!k?.AccessKeyId || !k.SecretAccessKey) throw new Error('AssumeRole returned no credentials');
      this.secrets.push(k.SecretAccessKey, ...(k.SessionToken ? [k.SessionToken] : []));
      return {
        accessKeyId: k.AccessKeyId,
        secretAccessKey: k.SecretAccessKey,
        ...(k.SessionToken ? { sessionToken: k.SessionToken } : {}),
        ...(k.Expiration ? { expiration: k.Expiration } : {}),
      };
    });
  }

  private makeClient(region: string, credentials: CredentialProvider, extra: Partial<S3ClientConfig> = {}): S3Client {
    const c = this.cfg;
    const retry = this.retryStrategy();
    return new S3Client({
      region,
      credentials,
      forcePathStyle: c.forcePathStyle,
      requestHandler: this.handler,
      retryStrategy: retry,
      maxAttempts: retry.attempts,
      // S3-compatible stores often reject the newer flexible checksums; AWS itself keeps the SDK default.
      ...(c.endpoint ? { endpoint: normalizeEndpoint(c.endpoint), requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
      ...extra,
    });
  }

  /** Region: config, then AWS_REGION/AWS_DEFAULT_REGION; with neither nor an endpoint, asks S3 (GetBucketLocation). */
  private getClient(): Promise<S3Client> {
    this.client ??= (async () => {
      let region = this.region();
      if (!region && !this.cfg.endpoint) {
        const probe = this.makeClient('us-east-1', this.credentials('us-east-1'), { followRegionRedirects: true });
        try {
          const loc = await probe.send(new GetBucketLocationCommand({ Bucket: this.cfg.bucket }));
          region = loc.LocationConstraint === 'EU' ? 'eu-west-1' : loc.LocationConstraint || 'us-east-1';
        } catch {
          region = 'us-east-1';
        } finally {
          probe.destroy();
        }
      }
      region ||= 'us-east-1';
      return this.makeClient(region, this.credentials(region), region === 'us-east-1' && !this.cfg.endpoint ? { followRegionRedirects: true } : {});
    })();
    // A failed set-up (credentials) is retried on the next upload.
    this.client.catch(() => (this.client = undefined));
    return this.client;
  }

  async upload(localPath: string, storagePath: string, contentType: string): Promise<UploadResult> {
    try {
      const { size } = await stat(localPath);
      const client = await this.getClient();
      const partSize = Math.max(this.opts.partSize ?? MIN_PART_SIZE, MIN_PART_SIZE, Math.ceil(size / MAX_PARTS));
      const c = this.cfg;
      const upload = new Upload({
        client,
        partSize,
        queueSize: this.opts.queueSize ?? DEFAULT_QUEUE_SIZE,
        leavePartsOnError: false,
        params: {
          Bucket: c.bucket,
          Key: storagePath,
          Body: createReadStream(localPath, { highWaterMark: 1024 * 1024 }),
          ContentType: contentType,
          ContentDisposition: c.contentDisposition || 'inline',
          ...(Object.keys(c.metadata).length > 0 ? { Metadata: c.metadata } : {}),
          ...(c.tagging ? { Tagging: c.tagging } : {}),
        },
      });
      await upload.done();
      const location = this.opts.generatePresignedUrl
        ? await getSignedUrl(client, new GetObjectCommand({ Bucket: c.bucket, Key: storagePath }), { expiresIn: PRESIGN_EXPIRY_SECONDS })
        : s3Location(c, storagePath);
      return { location, size };
    } catch (err) {
      throw uploadFailed(this, err, this.secrets);
    }
  }

  /** A presigned GET URL for an object already in the bucket. */
  async presign(storagePath: string, expiresIn = PRESIGN_EXPIRY_SECONDS): Promise<string> {
    const client = await this.getClient();
    return getSignedUrl(client, new GetObjectCommand({ Bucket: this.cfg.bucket, Key: storagePath }), { expiresIn });
  }

  async close(): Promise<void> {
    const client = await this.client?.catch(() => undefined);
    client?.destroy();
    this.handler.destroy();
  }
}

export function createS3Backend(cfg: S3Config, opts: S3BackendOptions = {}): S3Backend {
  if (!cfg.bucket) throw new StorageError('S3', 'S3 upload failed: no bucket configured', false);
  return new S3Backend(cfg, opts);
}
