// A loopback STS that answers AssumeRole (query protocol, form-encoded POST) with XML credentials.
// It checks that each call is SigV4-signed with a key pair it knows, records the RoleArn and
// ExternalId, and hands out the credentials it was configured with (e.g. s3rver's S3RVER/S3RVER,
// so an upload only works after the role was assumed).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { freePort } from '../ports.ts';
import { SigV4Error, verifySigV4 } from './sigv4.ts';

export interface AssumeRoleCall {
  accessKeyId: string;
  roleArn: string;
  externalId: string;
  roleSessionName: string;
  durationSeconds: string;
}

export interface FakeSts {
  port: number;
  endpoint: string;
  calls: AssumeRoleCall[];
  /** Requests refused (bad signature, unknown key, wrong action), with the reason. */
  rejected: string[];
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export interface FakeStsOptions {
  /** Callers' key pairs: access key id → secret. */
  callers: Record<string, string>;
  /** What AssumeRole returns. */
  issued: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function errorXml(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'text/xml' });
  res.end(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>fake-sts</RequestId></ErrorResponse>`);
}

export async function startSts(opts: FakeStsOptions): Promise<FakeSts> {
  const port = await freePort();
  const calls: AssumeRoleCall[] = [];
  const rejected: string[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    let caller: string;
    try {
      caller = verifySigV4({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, body, opts.callers);
    } catch (err) {
      rejected.push((err as Error).message);
      errorXml(res, 403, err instanceof SigV4Error ? err.code : 'AccessDenied', (err as Error).message);
      return;
    }
    const params = new URLSearchParams(req.method === 'POST' ? body.toString() : new URL(req.url ?? '/', 'http://sts').search);
    if (params.get('Action') !== 'AssumeRole') {
      rejected.push(`unsupported action ${params.get('Action')}`);
      errorXml(res, 400, 'InvalidAction', 'only AssumeRole is implemented');
      return;
    }
    const call: AssumeRoleCall = {
      accessKeyId: caller,
      roleArn: params.get('RoleArn') ?? '',
      externalId: params.get('ExternalId') ?? '',
      roleSessionName: params.get('RoleSessionName') ?? '',
      durationSeconds: params.get('DurationSeconds') ?? '',
    };
    calls.push(call);
    const expiration = new Date(Date.now() + 3600_000).toISOString();
    const c = opts.issued;
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>${xmlEscape(c.accessKeyId)}</AccessKeyId>
      <SecretAccessKey>${xmlEscape(c.secretAccessKey)}</SecretAccessKey>
      <SessionToken>${xmlEscape(c.sessionToken)}</SessionToken>
      <Expiration>${expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>${xmlEscape(call.roleArn)}/${xmlEscape(call.roleSessionName)}</Arn>
      <AssumedRoleId>AROAFAKE:${xmlEscape(call.roleSessionName)}</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>fake-sts-${calls.length}</RequestId></ResponseMetadata>
</AssumeRoleResponse>`);
  };

  let server: Server | undefined;
  const up = () =>
    new Promise<void>((resolve, reject) => {
      if (server) return resolve();
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => handle(req, res, Buffer.concat(chunks)));
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        resolve();
      });
    });
  const down = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = undefined;
      if (!s) return resolve();
      s.close(() => resolve());
      s.closeAllConnections();
    });
  await up();
  return { port, endpoint: `http://127.0.0.1:${port}`, calls, rejected, up, down, stop: down };
}
