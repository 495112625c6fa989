// Errors that cross a boundary carry a psrpc code. The HTTP status is derived, never stored twice.

export type ErrorCode =
  | 'canceled' | 'malformed_request' | 'malformed_result' | 'deadline_exceeded' | 'unavailable' | 'unknown'
  | 'invalid_argument' | 'not_found' | 'not_acceptable' | 'already_exists' | 'permission_denied'
  | 'resource_exhausted' | 'failed_precondition' | 'aborted' | 'out_of_range' | 'unimplemented' | 'internal'
  | 'data_loss' | 'unauthenticated';

const HTTP_STATUS: Record<ErrorCode, number> = {
  canceled: 408, malformed_request: 400, malformed_result: 400, deadline_exceeded: 503, unavailable: 503,
  unknown: 500, invalid_argument: 400, not_found: 404, not_acceptable: 406, already_exists: 409,
  permission_denied: 403, resource_exhausted: 429, failed_precondition: 412, aborted: 409, out_of_range: 400,
  unimplemented: 501, internal: 500, data_loss: 500, unauthenticated: 401,
};

export class EgressError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = 'EgressError';
  }

  /** EgressInfo.error_code: the HTTP mapping, left 0 for `unknown` as the Go egress does. */
  get httpStatus(): number {
    return this.code === 'unknown' ? 0 : HTTP_STATUS[this.code];
  }
}

export const isErrorCode = (s: string): s is ErrorCode => s in HTTP_STATUS;

export function toEgressError(err: unknown): EgressError {
  if (err instanceof EgressError) return err;
  return new EgressError('unknown', err instanceof Error ? err.message : String(err));
}

// The Go egress's texts, reproduced so API callers see the same messages.
export const errors = {
  invalidField: (field: string) => new EgressError('invalid_argument', `request has missing or invalid field: ${field}`),
  alreadyExists: () => new EgressError('already_exists', 'egress already exists'),
  shuttingDown: () => new EgressError('unavailable', 'server is shutting down'),
  notEnoughCpu: () => new EgressError('unavailable', 'not enough CPU'),
  egressNotFound: () => new EgressError('not_found', 'egress not found'),
  handlerFailedToStart: () => new EgressError('internal', 'handler failed to start'),
  trackNotFound: (id: string) => new EgressError('not_found', `track ${id} not found`),
  participantNotFound: (id: string) => new EgressError('not_found', `participant ${id} not found`),
  notYetSupported: (mime: string) => new EgressError('invalid_argument', `${mime} is not yet supported`),
  websocketIncompatible: (mime: string) => new EgressError('invalid_argument', `format websocket incompatible with codec ${mime}`),
  // Planning (egress-behaviour §13.2).
  noCompatibleCodec: () => new EgressError('invalid_argument', 'no supported codec is compatible with all outputs'),
  incompatibleCodec: (outputType: string, codec: string) => new EgressError('invalid_argument', `format ${outputType} incompatible with codec ${codec}`),
  noCompatibleFileType: () => new EgressError('invalid_argument', 'no supported file output type is compatible with the selected codecs'),
  invalidUrl: (url: string, reason: string) => new EgressError('invalid_argument', `invalid url ${url}: ${reason}`),
  notStreaming: () => new EgressError('invalid_argument', 'UpdateStream called on non-streaming egress'),
  /** `status`: the EgressStatus name without its EGRESS_ prefix. */
  cannotUpdate: (status: string) => new EgressError('failed_precondition', `egress with status ${status} cannot be updated`),
  streamNotFound: (url: string) => new EgressError('not_found', `stream ${url} not found`),
  twitchIngest: (reason: string) => new EgressError('unavailable', `could not find a twitch ingest server: ${reason}`),
  nonLiveStream: () => new EgressError('invalid_argument', 'stream output for non-live pipeline is not yet supported'),
  retryUnsupported: () => new EgressError('failed_precondition', 'output configuration does not support retry'),
  assumeRoleDisabled: () => new EgressError('permission_denied', 'S3 upload using AssumeRole is disabled for this account'),
  // Ours, not the Go egress's (it lacks path safety): an output path that would leave its root.
  pathOutsideRoot: (field: string, root: string) => new EgressError('invalid_argument', `request has missing or invalid field: ${field} (must stay inside local_output_dir ${root})`),
  pathDotDot: (field: string) => new EgressError('invalid_argument', `request has missing or invalid field: ${field} (must not contain ..)`),
  pathNul: (field: string) => new EgressError('invalid_argument', `request has missing or invalid field: ${field} (must not contain NUL)`),
  imageQueueFull: (pending: number) => new EgressError('internal', `image upload queue full (${pending} pending): storage cannot keep up`),
  segmentQueueFull: () => new EgressError('internal', 'segment upload job queue is full'),
  /** The EOS watchdog fired: the pipeline did not finish within its deadline (Go's text). */
  pipelineFrozen: () => new EgressError('internal', 'pipeline frozen'),
  connectionFailed: () => new EgressError('unavailable', 'recording ended early: connection to room failed'),
  /** Joining the room failed: the server's reason (the Go SDK's text). */
  signalFailed: (reason: string) => new EgressError('unavailable', `could not establish signal connection: ${reason}`),
  /** Ours: the node died under a running job, and the next node on the machine finished its report. */
  recoveredAfterRestart: () => new EgressError('unavailable', 'recovered after node restart'),
  // Ours, not the Go egress's: a subscribed track that never decodes fails its egress instead of hanging in STARTING.
  noDecodableFrame: (trackId: string, codec: string, seconds: number) =>
    new EgressError('failed_precondition', `track ${trackId} (${codec}) yielded no decodable frame within ${seconds} s`),
  // psrpc (psrpc-wire §4): the texts livekit-server's own client uses.
  requestTimedOut: () => new EgressError('deadline_exceeded', 'request timed out'),
  noResponse: () => new EgressError('unavailable', 'no response from servers'),
  noServers: (claims: number) => new EgressError('unavailable', `no servers available (received ${claims} responses)`),
  // Ours: Redis refused or lost a PUBLISH/SUBSCRIBE; transient, so callers may retry.
  busUnavailable: (reason: string) => new EgressError('unavailable', `redis unavailable: ${reason}`),
  // Web sources (egress-behaviour §9.1).
  pageLoad: (reason: string) => new EgressError('invalid_argument', `page load error: ${reason}`),
  templateError: (text: string) => new EgressError('invalid_argument', `template error: ${text}`),
  launchPulse: (reason: string) => new EgressError('internal', `failed to launch pulse: ${reason}`),
  launchXvfb: (reason: string) => new EgressError('internal', `failed to launch xvfb: ${reason}`),
  launchChrome: (reason: string) => new EgressError('internal', `failed to launch chrome: ${reason}`),
  // Ours, not the Go egress's (its page dying shows up later as a frozen pipeline or not at all).
  pageCrashed: () => new EgressError('internal', 'chrome page crashed'),
  chromeExited: () => new EgressError('internal', 'chrome exited unexpectedly'),
};

/** EgressInfo.error of a web egress whose page never logged START_RECORDING (ABORTED). */
export const START_SIGNAL_NOT_RECEIVED = 'Start signal not received';
