// The pure parts of web sources, as tables: Chromium's flags, the page URL, Xvfb's arguments and the
// capture inputs of the job's gst graph (egress-behaviour §9.1, §11.1, §11.2).
import t from 'tap';
import { chromeFlags } from '../../handler/src/source/web/chrome-flags.ts';
import { xvfbArgs } from '../../handler/src/source/web/display.ts';
import { pageUrl } from '../../handler/src/source/web/page-url.ts';
import { encodeArgs, inputCount, outputFds, type Branch, type EncodeGraph } from '../../handler/src/pipeline/encode.ts';

const BASE = { width: 1280, height: 720, display: ':7', insecure: false, sandbox: false, extra: {} };

t.test('chrome flags', async (t) => {
  const cases: [string, Parameters<typeof chromeFlags>[0], string[], string[]][] = [
    ['defaults', BASE, ['--kiosk', '--window-size=1280,720', '--window-position=0,0', '--autoplay-policy=no-user-gesture-required', '--no-sandbox', '--display=:7', '--disable-gpu'], ['--disable-web-security']],
    ['sandboxed', { ...BASE, sandbox: true }, ['--kiosk'], ['--no-sandbox']],
    ['insecure', { ...BASE, insecure: true }, ['--disable-web-security', '--allow-running-insecure-content'], []],
    ['1080p', { ...BASE, width: 1920, height: 1080 }, ['--window-size=1920,1080'], ['--window-size=1280,720']],
    ['chrome_flags', { ...BASE, extra: { 'enable-logging': true, 'v': 1, 'js-flags': '--expose-gc', 'disable-gpu': '', 'mute-audio': false } }, ['--enable-logging', '--v=1', '--js-flags=--expose-gc'], ['--mute-audio']],
  ];
  for (const [name, o, want, not] of cases) {
    const flags = chromeFlags(o);
    for (const w of want) t.ok(flags.includes(w), `${name}: ${w}`);
    for (const n of not) t.notOk(flags.includes(n), `${name}: no ${n}`);
  }
  const custom = chromeFlags({ ...BASE, extra: { 'disable-features': 'Foo' } });
  t.equal(custom.at(-1), '--disable-features=Foo', 'chrome_flags come last, so they override the built-in ones');
  t.ok(chromeFlags(BASE).every((f) => f.startsWith('--')), 'every flag is a switch');
});

t.test('page URL', async (t) => {
  const room = { wsUrl: 'wss://lk.example.com', token: 'jwt.x.y' };
  t.equal(pageUrl({ type: 'web', url: 'https://example.com/page?a=1', awaitStartSignal: false }, undefined), 'https://example.com/page?a=1', 'a web page as given');
  t.equal(
    pageUrl({ type: 'web', url: 'ignored', template: { baseUrl: 'http://localhost:7980/', layout: 'speaker' }, awaitStartSignal: true }, room),
    'http://localhost:7980/?layout=speaker&token=jwt.x.y&url=wss%3A%2F%2Flk.example.com',
    'template: layout, token and url, sorted by key, as the reference example',
  );
  t.equal(
    pageUrl({ type: 'web', url: 'ignored', template: { baseUrl: 'https://t.example.com/rec?z=1&b=2', layout: '' }, awaitStartSignal: true }, room),
    'https://t.example.com/rec?b=2&token=jwt.x.y&url=wss%3A%2F%2Flk.example.com&z=1',
    'merged into the custom base URL query; no layout when empty',
  );
  t.equal(
    pageUrl({ type: 'web', url: 'ignored', template: { baseUrl: 'http://localhost:7980/?layout=grid', layout: 'grid-light' }, awaitStartSignal: true }, room),
    'http://localhost:7980/?layout=grid-light&token=jwt.x.y&url=wss%3A%2F%2Flk.example.com',
    'the request layout replaces one in the base URL',
  );
  t.throws(() => pageUrl({ type: 'web', url: 'x', template: { baseUrl: 'http://localhost:7980/', layout: '' }, awaitStartSignal: true }, undefined), /room connection/);
});

t.test('Xvfb arguments', async (t) => {
  t.same(xvfbArgs({ width: 1920, height: 1080, depth: 24 }), ['-displayfd', '3', '-screen', '0', '1920x1080x24', '-ac', '-nolisten', 'tcp', '-nolisten', 'unix']);
});

const A = { codec: 'aac', bitrateKbps: 128, frequency: 44100 } as const;
const V = { codec: 'h264', width: 1280, height: 720, fps: 30, bitrateKbps: 3000, encode: true } as const;
const capture = { type: 'screen' as const, display: ':7', pulseDevice: 'EG_abc.monitor' };
const mp4: Branch = { type: 'file', name: 'out0', fileType: 'mp4', location: 'x.mp4' };

/** Whether `run` appears in `args` as consecutive elements. */
const containsRun = (args: string[], run: string[]) => args.some((_, i) => run.every((r, j) => args[i + j] === r));

t.test('capture inputs of the encode graph', async (t) => {
  const cases: [string, EncodeGraph, string[][], string[]][] = [
    [
      'audio + video → MP4',
      { capture, audio: A, video: V, branches: [mp4] },
      [
        ['ximagesrc', 'display-name=:7', 'use-damage=false', 'show-pointer=false', '!', 'video/x-raw,framerate=30/1,width=1280,height=720', '!', 'queue', 'leaky=downstream'],
        ['pulsesrc', 'device=EG_abc.monitor', '!', 'audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2', '!', 'audiorate'],
        ['videoconvert', '!', 'videoscale', 'add-borders=true', '!', 'video/x-raw,format=I420,width=1280,height=720,pixel-aspect-ratio=1/1', '!', 'videorate', 'skip-to-first=true', '!', 'video/x-raw,framerate=30/1'],
        ['audioconvert', '!', 'audioresample', '!', 'audio/x-raw,rate=44100,channels=2', '!', 'avenc_aac'],
        ['x264enc'],
        ['video/x-h264,profile=main'],
      ],
      ['fdsrc', 'gdpdepay'],
    ],
    ['audio only → OGG', { capture, audio: { codec: 'opus', bitrateKbps: 96, frequency: 48000 }, branches: [{ ...mp4, fileType: 'ogg' }] }, [['pulsesrc', 'device=EG_abc.monitor'], ['opusenc', 'bitrate=96000']], ['ximagesrc', 'fdsrc']],
    ['video only', { capture, video: V, branches: [mp4] }, [['ximagesrc', 'display-name=:7']], ['pulsesrc', 'fdsrc']],
    [
      '1080p60 segments',
      { capture, audio: A, video: { ...V, width: 1920, height: 1080, fps: 60 }, branches: [{ type: 'segments', name: 'out0', location: 's_%05d.ts', segmentDurationS: 4 }] },
      [['video/x-raw,framerate=60/1,width=1920,height=1080'], ['splitmuxsink']],
      ['fdsrc'],
    ],
  ];
  for (const [name, g, runs, absent] of cases) {
    const args = encodeArgs(g);
    for (const r of runs) t.ok(containsRun(args, r), `${name}: ${r.join(' ')}`);
    for (const a of absent) t.notOk(args.includes(a), `${name}: no ${a}`);
    t.equal(inputCount(g), 0, `${name}: no input fds`);
  }
  t.same(outputFds({ capture, audio: A, video: V, branches: [mp4, { type: 'stream', name: 'out1' }] }), [
    { branch: 'out1', kind: 'audio', fd: 3 },
    { branch: 'out1', kind: 'video', fd: 4 },
  ], 'a stream output writes from fd 3 on: there are no input fds');
  t.notOk(containsRun(encodeArgs({ audio: A, video: V, branches: [mp4] }), ['videorate', 'skip-to-first=true']), 'frames from Node keep videorate filling from 0');
});
