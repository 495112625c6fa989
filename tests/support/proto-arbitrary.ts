// fast-check generators of protobuf-es messages, driven by the message's own field list: every field
// set or not, oneofs picking any case, enums in and out of range, numbers at their edges, and strings
// that look like what a caller would send (URLs, paths, placeholders) beside hostile ones. Property
// tests feed them to the planner and the psrpc handlers: whatever arrives must get a clear error or a
// valid answer, never a crash.
import fc from 'fast-check';
import { ScalarType, type FieldInfo, type Message, type MessageType } from '@bufbuild/protobuf';

const STRINGS = [
  '', 'a', 'testroom', 'TR_abcdefghijkl', 'EG_abcdefghijkl', 'alice', 'grid', 'speaker-light',
  'out.mp4', 'rec/{room_name}-{time}', '{track_id}.ogg', '{publisher_identity}/{utc}', 'x.m3u8', 'seg_{segment}', '%05d',
  '../x', '../../etc/passwd', '/etc/cron.d/x.ogg', '%2e%2e/x', '..\\x', 'a\u0000b', '\u202e',
  'rtmp://127.0.0.1/live/key', 'rtmps://h/app/k', 'srt://127.0.0.1:1?streamid=x', 'wss://127.0.0.1/ws', 'mux://k', 'twitch://k',
  'http://localhost:7980/', 'https://127.0.0.1/page', 'file:///etc/passwd', 'javascript:alert(1)', 'rtmp://h/a/b c"d',
  '{"layout":"grid"}', 'ZZZ', 'x'.repeat(5000),
];

const INTS = [0, 1, -1, 2, 30, 60, 720, 1280, 1920, 4096, 48000, 0x7fffffff, -0x80000000];

function scalar(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...STRINGS) },
        { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }) },
      );
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
    case ScalarType.DOUBLE:
      return fc.oneof(fc.constantFrom(0, -1, 0.5, 1e308, Number.NaN, Number.POSITIVE_INFINITY), fc.double());
    case ScalarType.FLOAT:
      return fc.oneof(fc.constantFrom(0, -1, 0.5, 3.4e38, Number.NaN, Number.POSITIVE_INFINITY), fc.float());
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.constantFrom(0, 1, 30, 0xffffffff), fc.nat());
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.constantFrom(...INTS), fc.integer());
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.constantFrom(0n, 1n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
    default:
      return fc.oneof(fc.constantFrom(0n, -1n, 2n ** 63n - 1n, -(2n ** 63n)), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
  }
}

function enumValue(field: Extract<FieldInfo, { kind: 'enum' }>): fc.Arbitrary<number> {
  const known = field.T.values.map((v) => v.no);
  return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.constantFrom(-1, 99, 0x7fffffff) });
}

function single(field: FieldInfo, depth: number): fc.Arbitrary<unknown> {
  switch (field.kind) {
    case 'scalar':
      return scalar(field.T);
    case 'enum':
      return enumValue(field);
    case 'message':
      return arbitraryMessage(field.T, depth - 1);
    case 'map': {
      const value = field.V.kind === 'scalar' ? scalar(field.V.T) : field.V.kind === 'enum' ? fc.constantFrom(...field.V.T.values.map((v) => v.no)) : arbitraryMessage(field.V.T, depth - 1);
      return fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 3 });
    }
  }
}

/** A message of type `T` with any subset of its fields set; nested messages stop at `depth`. */
export function arbitraryMessage<T extends Message<T>>(T: MessageType<T>, depth = 4): fc.Arbitrary<T> {
  if (depth <= 0) return fc.constant(new T());
  const plain: Record<string, fc.Arbitrary<unknown>> = {};
  const oneofs = new Map<string, FieldInfo[]>();
  for (const field of T.fields.list()) {
    if (field.oneof) {
      oneofs.set(field.oneof.localName, [...(oneofs.get(field.oneof.localName) ?? []), field]);
      continue;
    }
    plain[field.localName] = field.repeated ? fc.array(single(field, depth), { maxLength: 3 }) : single(field, depth);
  }
  for (const [name, cases] of oneofs) {
    plain[name] = fc.oneof(
      fc.constant({ case: undefined }),
      ...cases.map((f) => single(f, depth).map((value) => ({ case: f.localName, value }))),
    );
  }
  return fc.record(plain, { requiredKeys: [] }).map((fields) => new T(fields as never));
}
