// `egress start`: the request to send, built from flags or read from a protobuf-JSON file. Pure
// functions only (no I/O beyond the injected file reader), so they are unit tested on their own.
import {
  DirectFileOutput,
  EncodedFileOutput,
  EncodingOptionsPreset,
  ParticipantEgressRequest,
  RoomCompositeEgressRequest,
  SegmentedFileOutput,
  StreamOutput,
  TrackCompositeEgressRequest,
  TrackEgressRequest,
  WebEgressRequest,
  type ImageOutput,
} from '@livekit/protocol';
import type { EncodedOutputs } from 'livekit-server-sdk';
import { UsageError } from './errors.ts';

export const START_KINDS = ['room-composite', 'web', 'participant', 'track-composite', 'track'] as const;
export type StartKind = (typeof START_KINDS)[number];

export type StartRequest =
  | { kind: 'room-composite'; request: RoomCompositeEgressRequest }
  | { kind: 'web'; request: WebEgressRequest }
  | { kind: 'participant'; request: ParticipantEgressRequest }
  | { kind: 'track-composite'; request: TrackCompositeEgressRequest }
  | { kind: 'track'; request: TrackEgressRequest };

/** The livekit request message each kind's `--request` file holds. */
export const REQUEST_TYPES = {
  'room-composite': RoomCompositeEgressRequest,
  web: WebEgressRequest,
  participant: ParticipantEgressRequest,
  'track-composite': TrackCompositeEgressRequest,
  track: TrackEgressRequest,
} as const;

/** Flags of `egress start <kind>`, as commander hands them over (camelCased). */
export interface StartFlags {
  request?: string;
  room?: string;
  identity?: string;
  track?: string;
  audioTrack?: string;
  videoTrack?: string;
  urlToRecord?: string;
  file?: string;
  stream?: string[];
  segments?: string;
  websocket?: string;
  layout?: string;
  preset?: string;
  audioOnly?: boolean;
  videoOnly?: boolean;
  screenShare?: boolean;
}

/** Flag names that describe the request, and so cannot be combined with --request. */
const REQUEST_FLAGS: [keyof StartFlags, string][] = [
  ['room', '--room'],
  ['identity', '--identity'],
  ['track', '--track'],
  ['audioTrack', '--audio-track'],
  ['videoTrack', '--video-track'],
  ['urlToRecord', '--url-to-record'],
  ['file', '--file'],
  ['stream', '--stream'],
  ['segments', '--segments'],
  ['websocket', '--websocket'],
  ['layout', '--layout'],
  ['preset', '--preset'],
  ['audioOnly', '--audio-only'],
  ['videoOnly', '--video-only'],
  ['screenShare', '--screen-share'],
];

const isGiven = (v: unknown): boolean => (Array.isArray(v) ? v.length > 0 : v !== undefined && v !== false);

/**
 * The request for `egress start <kind>`: read from `flags.request` (through `readFile`) or built
 * from the other flags. Throws UsageError (exit 2) with one line naming the problem.
 */
export function loadStartRequest(kind: StartKind, flags: StartFlags, readFile: (path: string) => string): StartRequest {
  if (flags.request === undefined) return requestFromFlags(kind, flags);
  const extra = REQUEST_FLAGS.filter(([key]) => isGiven(flags[key])).map(([, name]) => name);
  if (extra.length) throw new UsageError(`--request cannot be combined with ${extra.join(', ')}: put those fields in ${flags.request}`);
  let text: string;
  try {
    text = readFile(flags.request);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new UsageError(`${flags.request}: cannot read the request file: ${reason}`);
  }
  return parseRequestJson(kind, text, flags.request);
}

// ---------------------------------------------------------------------------------------------
// Request files

/**
 * Parses a `--request` file: protobuf JSON of the kind's request message. `source` (the file's
 * name) starts every error message.
 */
export function parseRequestJson(kind: StartKind, text: string, source: string): StartRequest {
  const type = REQUEST_TYPES[kind];
  const typeName = type.typeName.replace(/^livekit\./, '');
  const body = text.replace(/^\uFEFF/, '');
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    const at = locateJsonError(body);
    if (at) throw new UsageError(`${source}: invalid JSON at line ${at.line}: ${at.message} (column ${at.column})`);
    throw new UsageError(`${source}: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UsageError(`${source}: expected a JSON object (a ${typeName}), got ${describeJsonValue(json)}`);
  }
  try {
    // fromJson's own value type is protobuf-es's JsonValue; the parsed object is one
    const request = (type.fromJson as (j: unknown) => StartRequest['request'])(json);
    return { kind, request } as StartRequest;
  } catch (err) {
    throw new UsageError(`${source}: ${describeProtoJsonError((err as Error).message, body)}`);
  }
}

function describeJsonValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** The line (1-based) where `"key"` is first used as a property name in `text`, if it is. */
function lineOfKey(text: string, key: string): number | undefined {
  const escaped = JSON.stringify(key).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`${escaped}\\s*:`).exec(text);
  if (!m) return undefined;
  return text.slice(0, m.index).split('\n').length;
}

/** Rewrites protobuf-es's fromJson errors into the CLI's words, without the `livekit.` package. */
export function describeProtoJsonError(message: string, text = ''): string {
  const strip = (name: string) => name.replace(/^livekit\./, '');
  let m = /^cannot decode message (\S+) from JSON: key "(.*)" is unknown$/.exec(message);
  if (m) {
    const line = lineOfKey(text, m[2]!);
    return `unknown field "${m[2]}" in ${strip(m[1]!)}${line ? ` at line ${line}` : ''}`;
  }
  m = /^cannot decode field (\S+) from JSON: (.*)$/s.exec(message);
  if (m) return `invalid value ${shorten(m[2]!)} for field ${strip(m[1]!)}`;
  m = /^cannot decode enum (\S+) from JSON: (.*)$/s.exec(message);
  if (m) return `invalid ${strip(m[1]!)} value ${shorten(m[2]!)}`;
  m = /^cannot decode message (\S+) from JSON: (.*)$/s.exec(message);
  if (m) {
    const what = m[2]!;
    if (/^(array|null|string|number|boolean|\d|")/.test(what)) return `${strip(m[1]!)} must be a JSON object, got ${shorten(what)}`;
    return `${strip(m[1]!)}: ${what}`;
  }
  return message.replace(/livekit\./g, '');
}

const shorten = (s: string): string => (s.length > 60 ? `${s.slice(0, 57)}...` : s);

export interface JsonErrorLocation {
  offset: number;
  line: number;
  column: number;
  message: string;
}

/**
 * Finds the first syntax error in `text` (RFC 8259), with its line and column (1-based).
 * Returns undefined for valid JSON. V8's JSON.parse messages only sometimes carry a position.
 */
export function locateJsonError(text: string): JsonErrorLocation | undefined {
  let i = 0;
  const n = text.length;

  class Stop extends Error {
    constructor(
      readonly at: number,
      readonly why: string,
    ) {
      super(why);
    }
  }
  const show = (at: number) => (at >= n ? 'end of input' : `${JSON.stringify(text[at])}`);
  const fail = (why: string, at = i): never => {
    throw new Stop(at, at >= n && !why.startsWith('unexpected end') ? `unexpected end of input, ${why}` : why);
  };
  const ws = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++) {
      if (text[i + k] !== word[k]) fail(`invalid literal: expected "${word}"`, i + k);
    }
    i += word.length;
  };
  const string = () => {
    const start = i;
    i++; // opening quote
    for (;;) {
      if (i >= n) fail('unterminated string', start);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail(c === 0x0a ? 'line break inside a string' : 'control character inside a string');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape in a string');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else {
          fail(`bad escape ${e === undefined ? '' : `"\\${e}" `}in a string`);
        }
        continue;
      }
      i++;
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '-' || m[0] === '') fail(`invalid number`);
    const after = text[i + m![0].length];
    if (after === '.' || after === 'e' || after === 'E' || (after !== undefined && /\d/.test(after))) fail('invalid number', i + m![0].length);
    i += m![0].length;
  };
  const value = (depth: number): void => {
    if (depth > 512) fail('nested too deeply');
    ws();
    if (i >= n) fail('unexpected end of input, expected a value');
    const c = text[i]!;
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') {
          fail(text[i] === '}' ? 'trailing comma before "}"' : `expected a property name in double quotes, got ${show(i)}`);
        }
        string();
        ws();
        if (text[i] !== ':') fail(`expected ":" after a property name, got ${show(i)}`);
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`expected "," or "}" after a property value, got ${show(i)}`);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] === ']') fail('trailing comma before "]"');
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`expected "," or "]" after an array element, got ${show(i)}`);
      }
    }
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === "'") fail('strings must use double quotes');
    fail(`unexpected ${show(i)}, expected a value`);
  };

  try {
    value(0);
    ws();
    if (i < n) fail(`unexpected ${show(i)} after the end of the JSON value`);
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    const at = Math.min(err.at, n);
    const before = text.slice(0, at);
    const line = before.split('\n').length;
    const column = at - (before.lastIndexOf('\n') + 1) + 1;
    return { offset: at, line, column, message: err.why };
  }
}

// ---------------------------------------------------------------------------------------------
// Requests from flags

const PRESET_NAMES = Object.keys(EncodingOptionsPreset).filter((k) => Number.isNaN(Number(k)));

/** `--preset h264-1080p-30` → EncodingOptionsPreset.H264_1080P_30 (case and -/_ insensitive). */
export function parsePreset(name: string): EncodingOptionsPreset {
  const key = name.trim().toUpperCase().replace(/-/g, '_');
  const value = (EncodingOptionsPreset as unknown as Record<string, number>)[key];
  if (typeof value !== 'number') throw new UsageError(`unknown --preset "${name}": one of ${PRESET_NAMES.join(', ')}`);
  return value;
}

/** Builds the kind's request message from flags. Throws UsageError naming a missing or bad flag. */
export function requestFromFlags(kind: StartKind, flags: StartFlags): StartRequest {
  const need = (value: string | undefined, flag: string, what: string): string => {
    if (value === undefined || value.trim() === '') throw new UsageError(`start ${kind}: missing ${flag} <${what}> (or give the whole request with --request FILE)`);
    return value;
  };
  if (flags.audioOnly && flags.videoOnly) throw new UsageError('--audio-only and --video-only exclude each other');
  const options = flags.preset !== undefined ? { case: 'preset' as const, value: parsePreset(flags.preset) } : undefined;

  switch (kind) {
    case 'track': {
      const roomName = need(flags.room, '--room', 'room');
      const trackId = need(flags.track, '--track', 'track-id');
      if (flags.file !== undefined && flags.websocket !== undefined) throw new UsageError('start track: --file and --websocket exclude each other');
      let output: TrackEgressRequest['output'];
      if (flags.file !== undefined) output = { case: 'file', value: new DirectFileOutput({ filepath: flags.file }) };
      else if (flags.websocket !== undefined) output = { case: 'websocketUrl', value: flags.websocket };
      else throw new UsageError('start track: missing an output: --file <path> or --websocket <url>');
      return { kind, request: new TrackEgressRequest({ roomName, trackId, output }) };
    }
    case 'room-composite':
      return {
        kind,
        request: new RoomCompositeEgressRequest({
          roomName: need(flags.room, '--room', 'room'),
          layout: flags.layout ?? '',
          audioOnly: flags.audioOnly ?? false,
          videoOnly: flags.videoOnly ?? false,
          options,
          ...encodedOutputsFromFlags(kind, flags),
        }),
      };
    case 'web':
      return {
        kind,
        request: new WebEgressRequest({
          url: need(flags.urlToRecord, '--url-to-record', 'url'),
          audioOnly: flags.audioOnly ?? false,
          videoOnly: flags.videoOnly ?? false,
          options,
          ...encodedOutputsFromFlags(kind, flags),
        }),
      };
    case 'participant':
      return {
        kind,
        request: new ParticipantEgressRequest({
          roomName: need(flags.room, '--room', 'room'),
          identity: need(flags.identity, '--identity', 'identity'),
          screenShare: flags.screenShare ?? false,
          options,
          ...encodedOutputsFromFlags(kind, flags),
        }),
      };
    case 'track-composite': {
      const roomName = need(flags.room, '--room', 'room');
      if (!flags.audioTrack && !flags.videoTrack) throw new UsageError('start track-composite: missing --audio-track <track-id> or --video-track <track-id>');
      return {
        kind,
        request: new TrackCompositeEgressRequest({
          roomName,
          audioTrackId: flags.audioTrack ?? '',
          videoTrackId: flags.videoTrack ?? '',
          options,
          ...encodedOutputsFromFlags(kind, flags),
        }),
      };
    }
  }
}

function encodedOutputsFromFlags(kind: StartKind, flags: StartFlags) {
  const fileOutputs = flags.file !== undefined ? [new EncodedFileOutput({ filepath: flags.file })] : [];
  const streams = flags.stream ?? [];
  const streamOutputs = streams.length ? [new StreamOutput({ urls: streams })] : [];
  const segmentOutputs = flags.segments !== undefined ? [new SegmentedFileOutput({ filenamePrefix: flags.segments })] : [];
  if (!fileOutputs.length && !streamOutputs.length && !segmentOutputs.length) {
    throw new UsageError(`start ${kind}: missing an output: --file <path>, --stream <url> or --segments <prefix>`);
  }
  return { fileOutputs, streamOutputs, segmentOutputs };
}

// ---------------------------------------------------------------------------------------------
// Requests → EgressClient arguments

type CompositeRequest = RoomCompositeEgressRequest | WebEgressRequest | TrackCompositeEgressRequest | ParticipantEgressRequest;

/**
 * The outputs of a composite request in the shape EgressClient's start methods take: at most one of
 * each type (the deprecated single `output` field counts too). More than one of a type is a usage
 * error, as the SDK's calls could not carry it.
 */
export function encodedOutputs(request: CompositeRequest, source: string): EncodedOutputs {
  const files: EncodedFileOutput[] = [...request.fileOutputs];
  const streams: StreamOutput[] = [...request.streamOutputs];
  const segments: SegmentedFileOutput[] = [...request.segmentOutputs];
  const images: ImageOutput[] = [...request.imageOutputs];
  if ('output' in request) {
    const legacy = request.output;
    if (legacy.case === 'file') files.unshift(legacy.value);
    else if (legacy.case === 'stream') streams.unshift(legacy.value);
    else if (legacy.case === 'segments') segments.unshift(legacy.value);
  }
  for (const [list, what] of [
    [files, 'file'],
    [streams, 'stream'],
    [segments, 'segments'],
    [images, 'image'],
  ] as const) {
    if (list.length > 1) throw new UsageError(`${source}: ${list.length} ${what} outputs: at most one of each output type is supported`);
  }
  const out: EncodedOutputs = {};
  if (files[0]) out.file = files[0];
  if (streams[0]) out.stream = streams[0];
  if (segments[0]) out.segments = segments[0];
  if (images[0]) out.images = images[0];
  return out;
}

/** A track request's output as startTrackEgress takes it: the file output, or the WebSocket URL. */
export function trackOutput(request: TrackEgressRequest, source: string): DirectFileOutput | string {
  if (request.output.case === 'file') return request.output.value;
  if (request.output.case === 'websocketUrl') return request.output.value;
  throw new UsageError(`${source}: TrackEgressRequest has no output: set "file" or "websocketUrl"`);
}

/** The encoding options of a composite request, as the SDK's `encodingOptions` option. */
export function encodingOptions(request: CompositeRequest) {
  return request.options.case === undefined ? undefined : request.options.value;
}
