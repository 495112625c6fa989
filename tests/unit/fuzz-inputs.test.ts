// The two doors untrusted input comes through before anything starts, under generated input: the
// request planner (every StartEgressRequest livekit-server could relay) and the config loader (any
// YAML an operator could write). Each input gets a valid result or the door's own clear error
// (EgressError with a message; ConfigError naming the key), never a throw of another kind.
import path from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { stringify } from 'yaml';
import { EgressError } from '../../shared/src/errors.ts';
import { planPipeline } from '../../shared/src/plan/plan.ts';
import { StartEgressRequest } from '../../shared/src/proto/rpc.ts';
import { ConfigError, loadConfig } from '../../supervisor/src/config/load.ts';
import { configSchema } from '../../supervisor/src/config/schema.ts';
import { arbitraryMessage } from '../support/proto-arbitrary.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const NOW = new Date(Date.UTC(2026, 11, 3, 10, 0, 0));
const BASE = { api_key: 'key', api_secret: 'secret', ws_url: 'ws://127.0.0.1:7880', redis: { address: '127.0.0.1:6379' }, local_output_dir: '/out' };
const BASE_YAML = stringify(BASE);
const { config } = loadConfig({ body: BASE_YAML, env: {} });

t.test('the planner: any request gets a plan or an EgressError, and a plan\'s local paths stay inside local_output_dir', async (t) => {
  let planned = 0;
  const refused = new Map<string, number>();
  fc.assert(
    fc.property(arbitraryMessage(StartEgressRequest, 5), (req) => {
      try {
        const plan = planPipeline(req, config, NOW);
        planned++;
        for (const o of plan.outputs) {
          // Checked here independently of the planner's own path-safety code.
          const local = o.type === 'file' && !o.storage.s3 && !o.storage.azure && !o.storage.gcp && !o.storage.alioss;
          // An empty path is named later, in the handler, from the track (and checked again there).
          if (local && o.filepath && !path.resolve(config.localOutputDir, o.filepath).startsWith(config.localOutputDir + '/')) {
            throw new Error(`planned a local file outside local_output_dir: ${o.filepath}`);
          }
        }
      } catch (err) {
        if (!(err instanceof EgressError)) throw err;
        if (!err.message) throw new Error(`an EgressError without a message (${err.code})`, { cause: err });
        // Printable ASCII only: generated strings end up in messages, and a log with control bytes reads as binary.
        const kind = err.message.split(' ').slice(0, 4).join(' ').replace(/[^\x20-\x7e]/g, '?');
        refused.set(kind, (refused.get(kind) ?? 0) + 1);
      }
    }),
    { numRuns: RUNS },
  );
  t.ok(planned > 0, `some generated requests were valid and planned (${planned} of ${RUNS})`);
  t.ok(refused.size > 5, `many different refusals were reached: ${[...refused.keys()].slice(0, 12).join(' | ')}`);
});

t.test('the planner: bytes off the wire that parse as a request get a plan or an EgressError', async (t) => {
  let parsed = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      let req: StartEgressRequest;
      try {
        req = StartEgressRequest.fromBinary(bytes);
      } catch {
        return; // the psrpc layer answers undecodable bytes itself
      }
      parsed++;
      try {
        planPipeline(req, config, NOW);
      } catch (err) {
        if (!(err instanceof EgressError)) throw err;
      }
    }),
    { numRuns: RUNS },
  );
  t.ok(parsed > 0, `${parsed} byte strings parsed as requests`);
});

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; additionalProperties?: Schema | boolean; items?: Schema; pattern?: string; enum?: unknown[] };

/** Any YAML-able value: what an operator might write in the wrong place. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('', '0', '10s', '-1s', '1h30m', 'yes', 'ws://x', 'rtmp://x', '127.0.0.1:6379', '${HOME}', 'x'.repeat(300)),
  fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 12 }),
  fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxKeys: 2 }),
);

/** A value for `schema`: usually of its type, sometimes anything at all. */
function valueFor(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  if (schema.properties && depth > 0) {
    const fields = Object.fromEntries(Object.entries(schema.properties).map(([k, s]) => [k, valueFor(s, depth - 1)]));
    return fc.oneof({ weight: 5, arbitrary: fc.record(fields, { requiredKeys: [] }) }, { weight: 1, arbitrary: anyValue });
  }
  return anyValue;
}

t.test('the config loader: any document over the real keys gets a config or a ConfigError', async (t) => {
  let loaded = 0;
  const keys = new Set<string>();
  fc.assert(
    fc.property(valueFor(configSchema as Schema, 4), (doc) => {
      const body = stringify(doc && typeof doc === 'object' && !Array.isArray(doc) ? { ...BASE, ...doc } : BASE);
      try {
        loadConfig({ body, env: {} });
        loaded++;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const p of err.problems) {
          if (!/^config: |^could not parse|^missing config/.test(p)) throw new Error(`a problem that does not say where: ${p}`, { cause: err });
          keys.add(p.replace(/^config: /, '').split(/[ :]/)[0]!);
        }
      }
    }),
    { numRuns: RUNS },
  );
  t.ok(loaded > 0, `${loaded} generated configs loaded`);
  t.ok(keys.size > 10, `problems named many keys: ${[...keys].slice(0, 15).join(', ')}`);
});

t.test('the config loader: arbitrary text gets a config or a ConfigError', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('a: [', '{', '- 1\n- 2', 'a: &x 1\nb: *y', '<<: 1', '!!binary x', 'redis: !!str')), (text) => {
      try {
        loadConfig({ body: BASE_YAML + text, env: {} });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    }),
    { numRuns: RUNS },
  );
  t.pass('no other kind of throw');
});
