// Credentials never reach an error, a log line or a result. Storage SDK errors can carry them in
// several shapes: request URLs with presigned query strings, Authorization headers echoed back,
// connection strings, proxy URLs with a password, a service account's private key, or simply the
// secret a caller configured. Everything that leaves an upload back-end goes through redact().

import { STATUS_CODES } from 'node:http';
import { EgressError } from '@egress/shared/errors.ts';
import type { BackendKind, StorageBackend } from './backend.ts';

/** Query parameters whose value is a signature, a credential or a token (S3 v2/v4, Azure SAS, GCS, OSS). */
const SECRET_QUERY_PARAMS = [
  'X-Amz-Signature', 'X-Amz-Credential', 'X-Amz-Security-Token', 'Signature', 'AWSAccessKeyId',
  'sig', 'X-Goog-Signature', 'X-Goog-Credential', 'OSSAccessKeyId', 'security-token', 'access_token',
];

const PATTERNS: [RegExp, string][] = [
  // URL query parameters (also inside larger text); the value runs to the next & or delimiter.
  [new RegExp(`([?&](?:${SECRET_QUERY_PARAMS.join('|')})=)[^&\\s"'<>]+`, 'gi'), '$1{redacted}'],
  // Authorization headers: AWS SigV4, SigV2, Azure SharedKey, OSS, bearer tokens.
  [/(Credential=)[^,\s"'&{}]+/g, '$1{redacted}'],
  [/(Signature=)[0-9a-fA-F]+/g, '$1{redacted}'],
  [/\b(SharedKey(?:Lite)?|AWS|OSS) ([^:\s"']+):[A-Za-z0-9+/=]+/g, '$1 {redacted}:{redacted}'],
  [/\b(Bearer) [A-Za-z0-9._~+/=-]+/g, '$1 {redacted}'],
  [/(x-amz-security-token|x-oss-security-token)(["']?\s*[:=]\s*["']?)[^\s"',{}&]+/gi, '$1$2{redacted}'],
  // Azure connection strings.
  [/((?:AccountKey|SharedAccessSignature)=)[^;"'\s]+/gi, '$1{redacted}'],
  // A user:password in a URL (proxy URLs).
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@"']*:)[^@/\s"']+@/gi, '$1{redacted}@'],
  // PEM private keys (GCP credentials JSON) and JSON fields named like secrets.
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '{redacted private key}'],
  [/("(?:private_key|secret|secret_access_key|account_key|accountKey|secretAccessKey|sessionToken|session_token|password)"\s*:\s*")(?:[^"\\]|\\.)*"/g, '$1{redacted}"'],
  // AWS access key ids (long-term AKIA…, temporary ASIA…).
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, '{access_key}'],
  // 64-byte Azure account keys in base64 (88 characters, ending ==).
  [/(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])/g, '{account_key}'],
];

/**
 * Removes credentials from `text`: every `secrets` value (the ones the caller configured, however
 * they look), plus anything shaped like a signature, key or token.
 */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  const known = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length >= 4))]
    .sort((a, b) => b.length - a.length);
  for (const s of known) {
    out = out.split(s).join('{redacted}');
    const encoded = encodeURIComponent(s);
    if (encoded !== s) out = out.split(encoded).join('{redacted}');
  }
  for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
  return out;
}

/** The message of any thrown value, redacted. SDK errors with a code name it: `InvalidAccessKeyId: …`. */
export function redactError(err: unknown, secrets: readonly (string | undefined)[] = []): string {
  return redact(describeError(err), secrets);
}

/** One line for an SDK error: its code or name, its message, the HTTP status when known, nested causes. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & {
    code?: unknown; Code?: unknown; status?: unknown; statusCode?: unknown;
    $metadata?: { httpStatusCode?: number }; errors?: unknown[];
  };
  const status = httpStatusOf(err);
  let code = typeof e.code === 'string' ? e.code : typeof e.Code === 'string' ? e.Code : undefined;
  if (code === 'Unknown' || code === 'UnknownError') code = undefined;
  let message = e.message || e.name || 'unknown error';
  // Azure RestError messages carry the whole XML body: keep its <Message>.
  const xmlMessage = /<Message>([\s\S]*?)<\/Message>/.exec(message);
  if (xmlMessage) message = xmlMessage[1]!.split('\n')[0]!.trim();
  message = message.split('\n')[0]!.trim();
  // Bodiless error responses (a proxy's 407, a gateway's 502) come back as "UnknownError".
  if ((message === 'UnknownError' || message === '') && status !== undefined) message = STATUS_CODES[status] ?? 'HTTP error';
  let head = code && !message.includes(code) ? `${code}: ${message}` : message;
  if (!code && e.name && !['Error', 'Unknown', 'UnknownError'].includes(e.name) && !message.includes(e.name)) head = `${e.name}: ${message}`;
  if (status !== undefined && !head.includes(String(status))) head += ` (HTTP ${status})`;
  if (Array.isArray(e.errors) && e.errors.length > 0 && (message === '' || e.name === 'AggregateError')) {
    head = e.errors.map((x) => describeError(x)).join('; ');
  }
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error && !head.includes(cause.message)) head += `: ${describeError(cause)}`;
  return head;
}

/** The HTTP status an SDK error carries (AWS $metadata, Azure statusCode, GCS code, OSS status). */
export function httpStatusOf(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { $metadata?: { httpStatusCode?: unknown }; statusCode?: unknown; status?: unknown; code?: unknown; response?: { status?: unknown } };
  for (const v of [e.$metadata?.httpStatusCode, e.statusCode, e.status, e.response?.status, e.code]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return v;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The error every back-end throws: `<Backend> upload failed: <where>: <redacted cause>`.

const NETWORK_CODES = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENETDOWN|EAI_AGAIN|ECONNABORTED|ESOCKETTIMEDOUT|UND_ERR_[A-Z_]+|socket hang up|TimeoutError|RequestTimeout|REQUEST_SEND_ERROR)\b/;

/** Whether trying again later may help: connection-level failures, 408, 429 and 5xx. */
export function isTransient(err: unknown): boolean {
  if (err instanceof StorageError) return err.transient;
  const status = httpStatusOf(err);
  if (status !== undefined) return status === 408 || status === 429 || status >= 500;
  const seen = new Set<unknown>();
  const walk = (e: unknown): boolean => {
    if (!e || typeof e !== 'object' || seen.has(e)) return false;
    seen.add(e);
    const x = e as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; errors?: unknown[] };
    if ([x.code, x.name, x.message].some((v) => typeof v === 'string' && NETWORK_CODES.test(v))) return true;
    return walk(x.cause) || (Array.isArray(x.errors) && x.errors.some(walk));
  };
  return walk(err);
}

/** invalid_argument (400), as the Go egress reports upload failures. Carries no SDK object, only text. */
export class StorageError extends EgressError {
  constructor(
    readonly kind: BackendKind,
    message: string,
    readonly transient: boolean,
    readonly status?: number,
  ) {
    super('invalid_argument', message);
    this.name = 'StorageError';
  }
}

/** The back-end's name in `<Backend> upload failed`: its `kind`, else guessed from its description. */
export function kindOf(b: StorageBackend): BackendKind {
  if (b.kind) return b.kind;
  const d = b.description;
  if (/^(GCS|GCP|Google)/i.test(d)) return 'GCP';
  if (/^(Ali|OSS)/i.test(d)) return 'AliOSS';
  if (/^Azure/i.test(d)) return 'Azure';
  if (/^S3/i.test(d)) return 'S3';
  return 'Local';
}

/** Wraps anything a back-end threw; an existing StorageError passes through unchanged. */
export function uploadFailed(
  backend: StorageBackend | { kind: BackendKind; description: string },
  err: unknown,
  secrets: readonly (string | undefined)[] = [],
): StorageError {
  if (err instanceof StorageError) return err;
  const kind = 'kind' in backend && backend.kind ? backend.kind : kindOf(backend as StorageBackend);
  const where = redact(backend.description, secrets);
  return new StorageError(kind, `${kind} upload failed: ${where}: ${redactError(err, secrets)}`, isTransient(err), httpStatusOf(err));
}
