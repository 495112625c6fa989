// redact-error.ts: no credential survives into an error text.
import t from 'tap';
import { describeError, isTransient, redact, redactError, StorageError, uploadFailed } from '../../handler/src/upload/redact-error.ts';

t.test('known secrets are replaced wherever they appear, also URL-encoded', async (t) => {
  const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  t.equal(redact(`bad secret ${secret} and ${encodeURIComponent(secret)}`, [secret]), 'bad secret {redacted} and {redacted}');
  t.equal(redact('short ab', ['ab']), 'short ab', 'very short values are not treated as secrets');
  t.equal(redact('no secrets here', [undefined, '']), 'no secrets here');
});

t.test('shaped like credentials: signatures, keys, tokens, passwords', async (t) => {
  const cases: [string, string][] = [
    ['GET https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc123&X-Amz-Security-Token=FQoG',
      'GET https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={redacted}&X-Amz-Signature={redacted}&X-Amz-Security-Token={redacted}'],
    ['Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0123456789abcdef',
      'Authorization: AWS4-HMAC-SHA256 Credential={redacted}, SignedHeaders=host, Signature={redacted}'],
    ['https://acct.blob.core.windows.net/c/b?sv=2024-01-01&se=2026&sr=b&sp=r&sig=AbC%2Bdef%3D', 'https://acct.blob.core.windows.net/c/b?sv=2024-01-01&se=2026&sr=b&sp=r&sig={redacted}'],
    ['Authorization: SharedKey devstoreaccount1:bXlzaWduYXR1cmU=', 'Authorization: SharedKey {redacted}:{redacted}'],
    ['DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net', 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey={redacted};EndpointSuffix=core.windows.net'],
    ['proxy http://user:hunter2@proxy.local:3128 refused', 'proxy http://user:{redacted}@proxy.local:3128 refused'],
    ['key AKIAIOSFODNN7EXAMPLE and ASIAIOSFODNN7EXAMPLE', 'key {access_key} and {access_key}'],
    [`account key ${'A'.repeat(86)}== rejected`, 'account key {account_key} rejected'],
    ['{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n","client_email":"x"}',
      '{"type":"service_account","private_key":"{redacted}","client_email":"x"}'],
    ['-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----', '{redacted private key}'],
    ['Authorization: Bearer ya29.a0AfH6SMB', 'Authorization: Bearer {redacted}'],
    ['Authorization: OSS LTAI5tAbc:c2lnbmF0dXJl', 'Authorization: OSS {redacted}:{redacted}'],
    ['x-amz-security-token: FQoGZXIvYXdzEJr', 'x-amz-security-token: {redacted}'],
  ];
  for (const [input, want] of cases) t.equal(redact(input), want, want);
  t.equal(redact('ETag "9b2cf535f27731c974343645a3985328" at https://s3.example.com/b/k'), 'ETag "9b2cf535f27731c974343645a3985328" at https://s3.example.com/b/k', 'ordinary text untouched');
});

t.test('SDK error shapes become one readable, redacted line', async (t) => {
  const aws = Object.assign(new Error('The request signature we calculated does not match'), { name: 'SignatureDoesNotMatch', Code: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
  t.equal(describeError(aws), 'SignatureDoesNotMatch: The request signature we calculated does not match (HTTP 403)');
  const azure = Object.assign(new Error('Server failed to authenticate the request.\nRequestId:1\nTime:2026'), { name: 'RestError', code: 'AuthorizationFailure', statusCode: 403 });
  t.equal(describeError(azure), 'AuthorizationFailure: Server failed to authenticate the request. (HTTP 403)');
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
  t.equal(describeError(refused), 'connect ECONNREFUSED 127.0.0.1:9');
  t.equal(describeError(new Error('outer', { cause: new Error('inner') })), 'outer: inner');
  t.equal(describeError('plain string'), 'plain string');
  t.equal(redactError(new Error('secret s3cr3t-value!'), ['s3cr3t-value!']), 'secret {redacted}');
});

t.test('transient or not', async (t) => {
  t.ok(isTransient(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })));
  t.ok(isTransient(Object.assign(new Error('x'), { $metadata: { httpStatusCode: 503 } })));
  t.ok(isTransient(Object.assign(new Error('x'), { statusCode: 429 })));
  t.ok(isTransient(new Error('wrapped', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) })));
  t.ok(isTransient(new AggregateError([Object.assign(new Error('a'), { code: 'ETIMEDOUT' })], '')));
  t.notOk(isTransient(Object.assign(new Error('x'), { $metadata: { httpStatusCode: 403 } })));
  t.notOk(isTransient(Object.assign(new Error('ENOTDIR: not a directory'), { code: 'ENOTDIR' })));
});

t.test('uploadFailed: `<Backend> upload failed: <where>: <cause>`, invalid_argument', async (t) => {
  const e = uploadFailed({ kind: 'Azure', description: 'Azure container "c"' }, new Error('key=abcd1234 rejected'), ['abcd1234']);
  t.ok(e instanceof StorageError);
  t.equal(e.message, 'Azure upload failed: Azure container "c": key={redacted} rejected');
  t.equal(e.code, 'invalid_argument');
  t.equal(e.httpStatus, 400);
  t.equal(uploadFailed({ kind: 'S3', description: 'x' }, e), e, 'a StorageError passes through');
  t.notOk('cause' in e, 'the SDK error object is not kept');
});
