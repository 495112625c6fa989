// A local page for web egress tests, served on 127.0.0.1: red until it logs START_RECORDING, then a
// moving picture (a bar sweeping across, a running counter) and a 440 Hz WebAudio tone; it logs
// END_RECORDING when the test asks (end(id)). Query: `id` names the page for end(),
// `signal=<ms>` logs START_RECORDING that long after load, no `signal` never does (and then
// `plain=1` shows the moving picture from the start); `markers=1` replaces the tone by A/V markers:
// once a second a white frame and a 1 kHz beep together, as the rig's publishers send them
// (tests/rig/probe.ts avSync); `sdk=1` gives both signals through the real @livekit/egress-sdk from npm
// (EgressHelper.startRecording / endRecording, bundled at start) instead of its own console.log. Any
// other path is a 404.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
// tsx's bundler, which the suites run on anyway.
import { build } from 'esbuild';

/** @livekit/egress-sdk is a devDependency of the template, installed with it. */
const TEMPLATES_DIR = fileURLToPath(new URL('../../templates', import.meta.url));

/** @livekit/egress-sdk (with its livekit-client) as one browser script that sets window.EgressHelper. */
async function egressSdkBundle(): Promise<Uint8Array> {
  const result = await build({
    stdin: { contents: "import EgressHelper from '@livekit/egress-sdk'; window.EgressHelper = EgressHelper;", resolveDir: TEMPLATES_DIR },
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    minify: true,
    logLevel: 'warning',
  });
  return result.outputFiles[0]!.contents;
}

const page = (sdk: boolean) => `<!doctype html>
<html><head><style>
  html, body { margin: 0; width: 100%; height: 100%; overflow: hidden; background: #f00; }
  body.live { background: #003; }
  #bar { position: absolute; top: 0; left: 0; width: 10%; height: 100%; background: #0f0; display: none; animation: sweep 2s linear infinite alternate; }
  body.live #bar { display: block; }
  #clock { position: absolute; bottom: 20px; right: 40px; font: bold 96px monospace; color: #fff; }
  #flash { position: absolute; inset: 0; background: #fff; display: none; z-index: 1; }
  @keyframes sweep { from { left: 0; } to { left: 90%; } }
</style></head>
<body><div id="bar"></div><div id="clock"></div><div id="flash"></div>${sdk ? '<script src="/egress-sdk.js"></script>' : ''}<script>
  const q = new URLSearchParams(location.search);
  const signal = (word) => {
    if (!window.EgressHelper) return console.log(word);
    if (word === 'START_RECORDING') EgressHelper.startRecording();
    else EgressHelper.endRecording();
  };
  const t0 = performance.now();
  setInterval(() => { if (document.body.classList.contains('live')) clock.textContent = ((performance.now() - t0) / 1000).toFixed(1); }, 50);
  function live() {
    document.body.classList.add('live');
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = q.has('markers') ? 1000 : 440;
    gain.gain.value = q.has('markers') ? 0 : 0.3;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    if (!q.has('markers')) return;
    setInterval(() => {
      flash.style.display = 'block';
      gain.gain.setValueAtTime(0.5, ctx.currentTime);
      setTimeout(() => {
        flash.style.display = 'none';
        gain.gain.setValueAtTime(0, ctx.currentTime);
      }, 100);
    }, 1000);
  }
  if (q.has('signal')) {
    setTimeout(() => {
      live();
      // Two frames later the picture has changed; only then is recording asked for.
      requestAnimationFrame(() => requestAnimationFrame(() => signal('START_RECORDING')));
    }, Number(q.get('signal')));
  } else if (q.has('plain')) live();
  setInterval(async () => {
    const r = await fetch('/end?id=' + encodeURIComponent(q.get('id') || ''));
    if ((await r.text()) === 'yes') signal('END_RECORDING');
  }, 50);
</script></body></html>`;

export interface WebPages {
  /** The page's URL, e.g. page({ id: 'a', signal: 1500 }). */
  url(q: { id: string; signal?: number; plain?: boolean; markers?: boolean; sdk?: boolean }): string;
  /** A path that answers 404. */
  missing: string;
  /** The page with this id logs END_RECORDING from now on. */
  end(id: string): void;
  stop(): Promise<void>;
}

export async function serveWebPages(): Promise<WebPages> {
  const ended = new Set<string>();
  const sdkBundle = await egressSdkBundle();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/page') res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end(page(url.searchParams.has('sdk')));
    else if (url.pathname === '/egress-sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdkBundle);
    else if (url.pathname === '/end') res.writeHead(200, { 'content-type': 'text/plain' }).end(ended.has(url.searchParams.get('id') ?? '') ? 'yes' : 'no');
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: (q) => `${base}/page?id=${encodeURIComponent(q.id)}${q.signal !== undefined ? `&signal=${q.signal}` : ''}${q.plain ? '&plain=1' : ''}${q.markers ? '&markers=1' : ''}${q.sdk ? '&sdk=1' : ''}`,
    missing: `${base}/missing`,
    end: (id) => void ended.add(id),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
