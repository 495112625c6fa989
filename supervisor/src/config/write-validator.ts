// `bin/build`: writes the config validator as code (ajv's standalone output), beside the compiled
// schema.js, so that a compiled node does not compile it at every start (0.2–0.5 s measured).
import { writeFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';
import { AJV_OPTIONS, configSchema } from './schema.ts';

const out = process.argv[2];
if (!out) throw new Error('usage: write-validator.js <output .js>');
const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true, esm: true } });
const code = standalone.default(ajv, ajv.compile(configSchema));
// An ES module in dist/ cannot require(): the validator must be self-contained.
if (/\brequire\(/.test(code)) throw new Error('the standalone config validator needs require(); keep the schema to keywords ajv inlines');
writeFileSync(out, code);
