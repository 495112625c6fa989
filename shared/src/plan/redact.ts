// Credentials never reach the stored EgressInfo, logs or the debug endpoint (protocol utils/redact.go).
import { AliOSSUpload, AzureBlobUpload, GCPUpload, S3Upload, type StorageConfig, type StreamOutput } from '@livekit/protocol';
import { redactStreamUrl } from './outputs/stream.ts';
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

type Uploads = { output: { value?: unknown } };
const redactIn = (o: Uploads | undefined): void => {
  const u = o?.output.value;
  if (u instanceof S3Upload || u instanceof GCPUpload || u instanceof AzureBlobUpload || u instanceof AliOSSUpload) redactUpload(u);
};
/** Stream keys as Go shows them (`{str...key}`); other schemes keep their host but lose query secrets. */
const redactUrls = (s: StreamOutput): void => {
  s.urls = s.urls.map((u) => (/^(rtmps?|mux|twitch):/.test(u) ? redactStreamUrl(u) : redactQuery(u)));
};

/** A deep copy of the request with upload credentials and URL secrets replaced, for every kind. */
export function redactRequest(req: StartEgressRequest): StartEgressRequest {
  const copy = req.clone();
  copy.token = '';
  const r = copy.request;
  switch (r.case) {
    case 'track':
      if (r.value.output.case === 'file') redactIn(r.value.output.value);
      if (r.value.output.case === 'websocketUrl') r.value.output.value = redactQuery(r.value.output.value);
      break;
    case 'roomComposite':
    case 'web':
    case 'participant':
    case 'trackComposite': {
      const v = r.value;
      // The deprecated single output (not on participant requests).
      if ('output' in v && v.output.case === 'stream') redactUrls(v.output.value);
      else if ('output' in v && v.output.value) redactIn(v.output.value as Uploads);
      [...v.fileOutputs, ...v.segmentOutputs, ...v.imageOutputs].forEach(redactIn);
      v.streamOutputs.forEach(redactUrls);
      break;
    }
    case 'egress':
    case 'replay': {
      const v = r.value;
      const storage = (st: StorageConfig | undefined) => {
        const u = st?.provider.value;
        if (u) redactUpload(u);
      };
      storage(v.storage);
      for (const o of v.outputs) {
        storage(o.storage);
        if (o.config.case === 'stream') redactUrls(o.config.value);
        else if (o.config.value && 'output' in o.config.value) redactIn(o.config.value as Uploads);
      }
      break;
    }
  }
  return copy;
}
