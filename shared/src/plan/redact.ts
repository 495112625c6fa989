// Credentials never reach the stored EgressInfo, logs or the debug endpoint (protocol utils/redact.go).
import { AliOSSUpload, AzureBlobUpload, GCPUpload, S3Upload } from '@livekit/protocol';
import { StartEgressRequest } from '../proto/rpc.ts';

type Upload = S3Upload | GCPUpload | AzureBlobUpload | AliOSSUpload;

const placeholder = (value: string, name: string) => (value ? `{${name}}` : value);

export function redactUpload(u: Upload): void {
  if (u instanceof S3Upload) {
    u.accessKey = placeholder(u.accessKey, 'access_key');
    u.secret = placeholder(u.secret, 'secret');
    u.sessionToken = placeholder(u.sessionToken, 'session_token');
    u.assumeRoleExternalId = placeholder(u.assumeRoleExternalId, 'external_id');
  } else if (u instanceof GCPUpload) {
    u.credentials = placeholder(u.credentials, 'credentials');
  } else if (u instanceof AzureBlobUpload) {
    u.accountName = placeholder(u.accountName, 'account_name');
    u.accountKey = placeholder(u.accountKey, 'account_key');
  } else {
    u.accessKey = placeholder(u.accessKey, 'access_key');
    u.secret = placeholder(u.secret, 'secret');
  }
}

/** Every query value becomes `{...}`, as the Go egress does for URLs it cannot parse as RTMP. */
export function redactQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url.slice(q + 1).split('&').map((kv) => (kv.includes('=') ? `${kv.slice(0, kv.indexOf('='))}={...}` : kv));
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** A deep copy of the request with upload credentials and URL secrets replaced. */
export function redactRequest(req: StartEgressRequest): StartEgressRequest {
  const copy = req.clone();
  copy.token = '';
  const r = copy.request;
  if (r.case === 'track') {
    if (r.value.output.case === 'file' && r.value.output.value.output.value) redactUpload(r.value.output.value.output.value);
    if (r.value.output.case === 'websocketUrl') r.value.output.value = redactQuery(r.value.output.value);
  }
  return copy;
}
