import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { GdpWriter } from '../../handler/src/gst/gdp.ts';
import { gstCommandLine, parseGstError, startGst, type GstLogger } from '../../handler/src/gst/runner.ts';

const RUNNER = new URL('../../handler/src/gst/runner.ts', import.meta.url).href;
const OPUS_OGG = ['audioconvert', '!', 'opusenc', '!', 'oggmux', '!', 'filesink'];
const LIVE_AUDIO = ['audiotestsrc', 'is-live=true', '!', ...OPUS_OGG];
const AUDIO_CAPS = 'audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2';

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gst-runner-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function oggDuration(file: string): Promise<{ codec: string; duration: number }> {
  const { stdout } = await execa('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', file]);
  const info = JSON.parse(stdout) as { streams: { codec_name: string }[]; format: { duration: string } };
  return { codec: info.streams[0]?.codec_name ?? '', duration: Number(info.format.duration) };
}

function recordingLogger() {
  const lines: { level: string; msg: string }[] = [];
  const logger: GstLogger = {
    debug: (msg) => lines.push({ level: 'debug', msg }),
    warn: (msg) => lines.push({ level: 'warn', msg }),
    error: (msg) => lines.push({ level: 'error', msg }),
  };
  return { logger, lines };
}

/** Runs a TS snippet in a fresh Node process (with tsx), as a handler would. */
function runScript(code: string, timeoutMs: number) {
  return execa('node', ['--import=tsx', '--input-type=module', '-e', code], { timeout: timeoutMs, reject: false });
}

function processState(pid: number): Promise<string> {
  // Field 3 of /proc/<pid>/stat; a killed orphan may linger as a zombie (Z) until reaped.
  return readFile(`/proc/${pid}/stat`, 'utf8').then(
    (stat) => stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?',
    () => 'gone',
  );
}

t.test('gstCommandLine quotes only what a shell needs quoted', async (t) => {
  t.equal(
    gstCommandLine(['fdsrc', 'fd=3', '!', 'capsfilter', 'caps=audio/x-raw, rate=48000', '!', 'filesink', "location=/tmp/it's.ogg"]),
    `gst-launch-1.0 -e -m fdsrc fd=3 ! capsfilter 'caps=audio/x-raw, rate=48000' ! filesink 'location=/tmp/it'\\''s.ogg'`,
  );
});

t.test('parseGstError', async (t) => {
  const cases: [line: string, want: string | undefined][] = [
    ['ERROR: from element /GstPipeline:pipeline0/GstFileSink:filesink0: Could not open file "/x" for writing.', 'Could not open file "/x" for writing.'],
    ["ERROR: pipeline doesn't want to preroll.", "pipeline doesn't want to preroll."],
    ['WARNING: erroneous pipeline: no element "nosuch"', 'no element "nosuch"'],
    ['WARNING: from element /GstPipeline:pipeline0/GstQueue:q: something odd', undefined],
    ['Setting pipeline to PAUSED ...', undefined],
  ];
  for (const [line, want] of cases) t.equal(parseGstError(line), want, line);
});

t.test('stop() on a live pipeline: EOS, exit 0, playable file', { timeout: 30_000 }, async (t) => {
  const out = join(await tempDir(t), 'live.ogg');
  const { logger, lines } = recordingLogger();
  const gst = startGst([...LIVE_AUDIO, `location=${out}`], { extraFds: 0, logger });
  await sleep(1500);
  const exit = await gst.stop();
  t.same(exit, { code: 0, signal: null, killedByWatchdog: false });
  const { codec, duration } = await oggDuration(out);
  t.equal(codec, 'opus');
  t.ok(duration > 1 && duration < 3, `duration ${duration} s`);
  t.ok(lines.some((l) => l.level === 'debug' && l.msg.includes('Setting pipeline to PAUSED')), 'status lines logged at debug');
  t.equal(gst.stop(), gst.stop(), 'stop() is idempotent');
});

t.test('stop() right after start still ends with EOS (SIGINT is held back until PLAYING)', { timeout: 60_000 }, async (t) => {
  // Without the hold-back, about a third of these die by SIGINT or deadlock in gst.
  const dir = await tempDir(t);
  const results = [];
  for (let i = 0; i < 10; i++) {
    const gst = startGst([...LIVE_AUDIO, `location=${join(dir, `${i}.ogg`)}`], { extraFds: 0 });
    await sleep(i * 7);
    results.push(await gst.stop({ timeoutMs: 5000 }));
  }
  t.same(results, Array(10).fill({ code: 0, signal: null, killedByWatchdog: false }));
});

t.test('stop() on a pipeline waiting on fdsrc with no input: EOF → EOS, exit 0', { timeout: 30_000 }, async (t) => {
  const out = join(await tempDir(t), 'empty.ogg');
  const gst = startGst(['fdsrc', 'fd=3', '!', 'gdpdepay', '!', ...OPUS_OGG, `location=${out}`], { extraFds: 1 });
  await sleep(500);
  const started = Date.now();
  t.same(await gst.stop({ timeoutMs: 5000 }), { code: 0, signal: null, killedByWatchdog: false });
  t.ok(Date.now() - started < 1000, 'ended by closing the input, no signal needed');
});

t.test('stop() with a live source next to an fd input: input EOF is not enough, SIGINT finishes it', { timeout: 30_000 }, async (t) => {
  const out = join(await tempDir(t), 'mixed.ogg');
  const gst = startGst(
    [
      'audiomixer', 'name=mix', '!', ...OPUS_OGG, `location=${out}`,
      'fdsrc', 'fd=3', '!', 'gdpdepay', '!', 'audioconvert', '!', 'mix.',
      'audiotestsrc', 'is-live=true', '!', 'audioconvert', '!', 'mix.',
    ],
    { extraFds: 1 },
  );
  const writer = new GdpWriter(gst.inputs[0]!, { streamId: 'a', caps: AUDIO_CAPS, maxBacklogBytes: Infinity });
  for (let i = 0; i < 100; i++) writer.write(new Uint8Array(1920), BigInt(i) * 10_000_000n, 10_000_000n);
  await sleep(1500);
  t.same(await gst.stop({ timeoutMs: 8000 }), { code: 0, signal: null, killedByWatchdog: false });
  t.equal((await oggDuration(out)).codec, 'opus');
});

t.test('an unknown element: error text and exit code 1', { timeout: 30_000 }, async (t) => {
  const { logger, lines } = recordingLogger();
  const gst = startGst(['fakesrc', '!', 'nosuchelement', '!', 'fakesink'], { extraFds: 0, logger });
  const exit = await gst.exited;
  t.same(exit, { code: 1, signal: null, killedByWatchdog: false, error: 'no element "nosuchelement"' });
  t.ok(lines.some((l) => l.level === 'error' && l.msg.includes('nosuchelement')), 'logged as error');
});

t.test('an element failing at runtime: first element error text', { timeout: 30_000 }, async (t) => {
  const gst = startGst(['audiotestsrc', 'num-buffers=10', '!', 'filesink', 'location=/nonexistent-dir/x.raw'], { extraFds: 0 });
  const exit = await gst.exited;
  t.not(exit.code, 0);
  t.equal(exit.error, 'Could not open file "/nonexistent-dir/x.raw" for writing.');
});

t.test('a missing binary resolves exited with the spawn error', async (t) => {
  const gst = startGst(['fakesrc', '!', 'fakesink'], { extraFds: 0, env: { PATH: '/nonexistent' } });
  const exit = await gst.exited;
  t.equal(exit.code, null);
  t.match(exit.error, /ENOENT/);
});

t.test('watchdog: a pipeline that cannot finish EOS is SIGKILLed after the timeout', { timeout: 30_000 }, async (t) => {
  // identity sleeping 5 s per buffer holds the EOS back far longer than the timeout.
  const gst = startGst(['audiotestsrc', 'is-live=true', '!', 'identity', 'sleep-time=5000000', '!', 'fakesink'], { extraFds: 0 });
  await sleep(1000);
  const started = Date.now();
  const exit = await gst.stop({ timeoutMs: 500 });
  t.same(exit, { code: null, signal: 'SIGKILL', killedByWatchdog: true });
  t.ok(Date.now() - started < 2000, 'killed promptly after the timeout');
});

t.test('kill(): SIGKILL, not counted as the watchdog; unended inputs do not block exit', { timeout: 30_000 }, async (t) => {
  const gst = startGst(['fdsrc', 'fd=3', '!', 'fakesink'], { extraFds: 1 });
  await sleep(300);
  gst.kill();
  t.same(await gst.exited, { code: null, signal: 'SIGKILL', killedByWatchdog: false });
});

t.test('gst runs in its own process group', { timeout: 30_000 }, async (t) => {
  const gst = startGst(['fakesrc', 'is-live=true', '!', 'fakesink'], { extraFds: 0 });
  await sleep(300);
  const stat = await readFile(`/proc/${gst.pid}/stat`, 'utf8');
  const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  t.equal(pgid, gst.pid);
  gst.kill();
  await gst.exited;
});

t.test('after gst exits, nothing keeps the Node process alive', { timeout: 30_000 }, async (t) => {
  const result = await runScript(
    `import { startGst } from '${RUNNER}';
     const gst = startGst(['audiotestsrc', 'is-live=true', '!', 'fakesink'], { extraFds: 2 });
     await new Promise((r) => setTimeout(r, 300));
     console.log(JSON.stringify(await gst.stop()));`,
    15_000,
  );
  t.equal(result.timedOut, false, 'script exited on its own');
  t.equal(result.stdout, JSON.stringify({ code: 0, signal: null, killedByWatchdog: false }));
});

t.test('if Node exits while gst runs, gst is killed with it', { timeout: 30_000 }, async (t) => {
  const result = await runScript(
    `import { startGst } from '${RUNNER}';
     const gst = startGst(['audiotestsrc', 'is-live=true', '!', 'fakesink'], { extraFds: 0 });
     console.log(gst.pid);
     setTimeout(() => process.exit(0), 300);`,
    15_000,
  );
  const pid = Number(result.stdout);
  t.ok(pid > 0, `gst pid ${pid}`);
  await sleep(300);
  t.match(await processState(pid), /^(gone|Z)$/, 'gst is gone (or a zombie awaiting reaping)');
});
