// Google Cloud Storage back-end (livekit/storage gcp.go) on @google-cloud/storage.
//
// Credentials: `credentials_json` (a service-account key) or, without it, Google application default
// credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC, metadata server). With `endpoint` set
// (emulator or private endpoint; not a Go egress option) requests are authenticated only when
// credentials_json or GOOGLE_APPLICATION_CREDENTIALS is given, so an emulator needs no credentials.
// Files above GCS_CHUNK_SIZE use a resumable upload sent in GCS_CHUNK_SIZE pieces, smaller ones one
// request. `proxy_config` routes every request (API, uploads, OAuth token) through the proxy.
// Upload failures come out of uploadFailed(): `GCP upload failed: GCS bucket "<b>": <reason>`.

import { createPrivateKey } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { IdempotencyStrategy, Storage, type StorageOptions } from '@google-cloud/storage';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { GcpConfig, ProxyConfig } from '@egress/shared/config/types.ts';
import { escapeLocationPath, type StorageBackend, type UploadResult } from './backend.ts';
import { uploadFailed } from './redact-error.ts';

type Interceptor = NonNullable<StorageOptions['interceptors_']>[number];
type DecorateRequestOptions = ReturnType<Interceptor['request']>;

/** Resumable chunk size; a multiple of 256 KiB as GCS requires. */
export const GCS_CHUNK_SIZE = 8 * 1024 * 1024;

/** Service-account key fields this back-end relies on. */
interface ServiceAccountKey {
  type: string;
  client_email: string;
  private_key: string;
  project_id?: string;
  [k: string]: unknown;
}

/**
 * Parses `credentials_json` like Go's google.JWTConfigFromJSON would accept it. The returned
 * reason never quotes the JSON (V8's JSON.parse message would echo the start of the key).
 */
function parseServiceAccount(json: string): ServiceAccountKey | string {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return 'credentials_json is not valid JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'credentials_json is not a JSON object';
  }
  const key = value as Record<string, unknown>;
  if (key.type !== 'service_account') {
    const type = typeof key.type === 'string' ? `"${key.type.slice(0, 40)}"` : 'missing';
    return `credentials_json is not a service-account key ('type' is ${type}, expected "service_account")`;
  }
  if (typeof key.client_email !== 'string' || key.client_email === '') {
    return 'credentials_json has no client_email';
  }
  if (typeof key.private_key !== 'string' || key.private_key === '') {
    return 'credentials_json has no private_key';
  }
  try {
    createPrivateKey(key.private_key);
  } catch {
    return 'credentials_json private_key is not a valid PEM private key';
  }
  return key as ServiceAccountKey;
}

/** Proxy URL with the configured basic-auth credentials (only when both are set, as Go). */
function proxyUrl(proxy: ProxyConfig): URL | string {
  let url: URL;
  try {
    url = new URL(proxy.url);
  } catch {
    return 'proxy_config.url is not a valid URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `proxy_config.url has unsupported scheme ${url.protocol}`;
  }
  if (proxy.username && proxy.password) {
    url.username = proxy.username;
    url.password = proxy.password;
  }
  return url;
}

/**
 * Go's location `https://<bucket>.storage.googleapis.com/<escaped key>`; with a custom endpoint
 * the path-style `<endpoint>/<bucket>/<escaped key>` (fake-gcs-server serves downloads there).
 */
export function gcsLocation(bucket: string, storagePath: string, endpoint?: string): string {
  return endpoint
    ? `${endpoint}/${encodeURIComponent(bucket)}${escapeLocationPath(storagePath)}`
    : `https://${bucket}.storage.googleapis.com${escapeLocationPath(storagePath)}`;
}

export function createGcsBackend(cfg: GcpConfig & { endpoint?: string }): StorageBackend {
  const description = `GCS bucket "${cfg.bucket}"`;
  const secrets: string[] = [cfg.credentialsJson];
  let configError: string | undefined;

  const options: StorageOptions = {
    // Go: always-retry policy, 5 attempts, exponential backoff ×2 capped at 5 s.
    retryOptions: {
      autoRetry: true,
      maxRetries: 4,
      retryDelayMultiplier: 2,
      maxRetryDelay: 5,
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    },
  };

  if (cfg.credentialsJson) {
    const key = parseServiceAccount(cfg.credentialsJson);
    if (typeof key === 'string') {
      configError = key;
    } else {
      secrets.push(key.private_key);
      options.credentials = key;
      if (key.project_id) options.projectId = key.project_id;
    }
  }

  const endpoint = cfg.endpoint?.trim().replace(/\/+$/, '');
  if (endpoint) {
    if (!/^https?:\/\/[^/]+$/.test(endpoint)) configError ??= 'endpoint must be http(s)://host[:port]';
    options.apiEndpoint = endpoint;
    options.useAuthWithCustomEndpoint = Boolean(cfg.credentialsJson || process.env.GOOGLE_APPLICATION_CREDENTIALS);
  }

  if (cfg.proxy?.url) {
    const url = proxyUrl(cfg.proxy);
    if (typeof url === 'string') {
      configError ??= url;
    } else {
      if (cfg.proxy.password) secrets.push(cfg.proxy.password);
      const href = url.href;
      // As Go's http.Transport: http:// targets through the proxy as a forward proxy, https:// ones
      // through a CONNECT tunnel (basic auth from the URL either way). Two HTTP stacks in the SDK:
      // JSON-API and simple-upload requests go through teeny-request, which only honours `proxy`
      // (and picks the same two agent kinds); resumable uploads and OAuth token requests go
      // through gaxios (node-fetch), which takes `agent`.
      const forward = new HttpProxyAgent(href);
      const tunnel = new HttpsProxyAgent(href);
      const agent = (target: URL) => (target.protocol === 'http:' ? forward : tunnel);
      options.interceptors_ = [
        {
          // The SDK types the argument as request's Options but passes its own request options on.
          request: (reqOpts) => Object.assign(reqOpts, { proxy: href, agent }) as unknown as DecorateRequestOptions,
        },
      ];
      options.clientOptions = { transporterOptions: { agent } };
    }
  }

  const bucket = configError ? undefined : new Storage(options).bucket(cfg.bucket);

  const location = (storagePath: string): string => gcsLocation(cfg.bucket, storagePath, endpoint);

  const backend: StorageBackend = {
    description,
    kind: 'GCP',
    async upload(localPath: string, storagePath: string, contentType: string): Promise<UploadResult> {
      if (!bucket) throw uploadFailed(backend, new Error(configError), secrets);
      let size: number;
      try {
        ({ size } = await stat(localPath));
        const resumable = size > GCS_CHUNK_SIZE;
        await bucket.upload(localPath, {
          destination: storagePath,
          contentType,
          resumable,
          ...(resumable ? { chunkSize: GCS_CHUNK_SIZE } : {}),
        });
      } catch (err) {
        throw uploadFailed(backend, err, secrets);
      }
      return { location: location(storagePath), size };
    },
  };
  return backend;
}
