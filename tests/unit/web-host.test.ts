// Whether a node bids for web sources depends on the machine: Chromium at chrome_path, Xvfb and
// PulseAudio. Checked against the real file system, with a PATH and chrome_path the test controls.
import t from 'tap';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../supervisor/src/config/load.ts';
import { WebHost, webHostMissing } from '../../supervisor/src/service/web-host.ts';
import { createLogger } from '../../shared/src/logging.ts';

const bin = mkdtempSync(path.join(os.tmpdir(), 'web-host-'));
const tool = (name: string) => {
  writeFileSync(path.join(bin, name), '#!/bin/sh\n');
  chmodSync(path.join(bin, name), 0o755);
  return path.join(bin, name);
};
const config = (chrome: string) =>
  loadConfig({ body: `api_key: k\napi_secret: s\nws_url: ws://127.0.0.1:7880\nredis: {address: 127.0.0.1:6379}\nchrome_path: ${chrome}\n`, env: {} }).config;

t.test('every tool present: web sources are served', async (t) => {
  const chrome = tool('chromium');
  for (const b of ['Xvfb', 'pulseaudio', 'pactl']) tool(b);
  t.equal(webHostMissing(config(chrome), { PATH: bin }), undefined);
});

t.test('the first missing tool is named', async (t) => {
  t.equal(webHostMissing(config(path.join(bin, 'no-chrome')), { PATH: bin }), `Chromium (${path.join(bin, 'no-chrome')})`);
  t.equal(webHostMissing(config(tool('chromium')), { PATH: '/nonexistent' }), 'Xvfb');
});

t.test('a node without Chromium does not serve web sources', async (t) => {
  const log = createLogger({ level: 'error', json: false });
  const host = new WebHost(config(path.join(bin, 'no-chrome')), log);
  t.equal(host.served.web, false);
  t.equal(host.served.sdk.track, true, 'SDK kinds are still served');
  host.close();
});
