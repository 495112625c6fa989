// Chromium for a web source: Debian's (or chrome_path), driven by playwright-core, rendering into the
// job's X display and playing into its null sink. It loads the page (egress-behaviour §9.1 steps
// 7-9) and hears the page's START_RECORDING / END_RECORDING.
//
// playwright spawns the browser detached, so it leads a process group of its own, but it does not
// tell its pid: it is found among this process's children while the launch runs and reported at
// once. The browser's helpers stay in its group except the crash handlers, which watch it and exit
// with it. A browser whose handler dies before that report still goes: it quits when its DevTools
// pipe to the handler closes.
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { chromium, errors as pwErrors, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { EgressError, errors } from '@egress/shared/errors.ts';
import type { ProcessReport } from '@egress/shared/ipc.ts';
import type { Logger } from '@egress/shared/logging.ts';

const LAUNCH_TIMEOUT_MS = 30_000;
const PAGE_LOAD_TIMEOUT_MS = 30_000;
const PAGE_LOAD_ATTEMPTS = 3;
/** Network errors worth a new tab (the reference's list). */
const RETRYABLE = new Set(['net::ERR_CERT_VERIFIER_CHANGED', 'net::ERR_CONNECTION_CLOSED']);
const CHILD_POLL_MS = 5;
const CLOSE_TIMEOUT_MS = 5_000;

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

export interface ChromiumOptions {
  executablePath: string;
  args: string[];
  sandbox: boolean;
  display: string;
  pulseSink: string;
  /** The browser profile, inside the job's scratch directory. */
  userDataDir: string;
  /** test_overrides.chrome_init_script: run in every page before the page's own scripts. */
  initScript?: string;
  log: Logger;
  report(p: ProcessReport): void;
}

export type PageSignal = 'start' | 'end';

export interface Chromium {
  /**
   * Loads `url` (a new tab per attempt); throws the reference's page load and template errors. `log`
   * is the job's (a spare's browser is launched before its job is known).
   */
  load(url: string, log: Logger): Promise<void>;
  /** Opens `url` in the first tab with nothing listening, to have its files cached; never throws. */
  preload(url: string): Promise<void>;
  /** START_RECORDING / END_RECORDING, from any page of this browser. */
  onSignal(cb: (s: PageSignal) => void): void;
  /** The page crashed or the browser went away while it was not being closed. */
  readonly died: Promise<EgressError>;
  close(): Promise<void>;
}

const SIGNALS: Record<string, PageSignal> = { START_RECORDING: 'start', END_RECORDING: 'end' };

function children(): number[] {
  try {
    return readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
};

/** Reports the browser as soon as it appears among this process's children; returns the stop. */
function watchForBrowser(o: ChromiumOptions): () => number | undefined {
  const before = new Set(children());
  let found: number | undefined;
  const scan = () => {
    if (found !== undefined) return;
    for (const pid of children()) {
      if (before.has(pid)) continue;
      // By its profile directory, which is this browser's alone: the executable path does not do,
      // as Debian's /usr/bin/chromium is a script that execs /usr/lib/chromium/chromium, and a scan
      // that came after the exec missed the browser (it was then never reported, nor killed).
      const cmd = cmdline(pid);
      if (!cmd.includes(`--user-data-dir=${o.userDataDir}`)) continue;
      found = pid;
      o.report({ pid, pgid: pid, name: 'chromium', commandLine: cmd.trim() });
      return;
    }
  };
  const timer = setInterval(scan, CHILD_POLL_MS);
  return () => {
    clearInterval(timer);
    scan();
    return found;
  };
}

export async function launchChromium(o: ChromiumOptions): Promise<Chromium> {
  const stopWatching = watchForBrowser(o);
  let context: BrowserContext;
  let pid: number | undefined;
  let initScript: string | undefined;
  try {
    // Read before the launch, so that a bad path fails the job with nothing started.
    if (o.initScript !== undefined) initScript = await readFile(o.initScript, 'utf8');
    context = await chromium.launchPersistentContext(o.userDataDir, {
      executablePath: o.executablePath,
      headless: false,
      // The page takes the window's real size (the display's), not an emulated viewport.
      viewport: null,
      chromiumSandbox: o.sandbox,
      ignoreDefaultArgs: ['--enable-automation'],
      args: o.args,
      env: { ...process.env, DISPLAY: o.display, PULSE_SINK: o.pulseSink },
      timeout: LAUNCH_TIMEOUT_MS,
      // The job's own signal handling ends the browser (close), never playwright's.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
  } catch (err) {
    throw errors.launchChrome((err as Error).message.split('\n')[0]!);
  } finally {
    pid = stopWatching();
  }
  if (pid === undefined) o.log.warn('chromium pid not found among the handler children', { executablePath: o.executablePath });
  // The context's first tab already exists; playwright installs the script there too, for its next navigation.
  if (initScript !== undefined) await context.addInitScript({ content: initScript });

  let closing = false;
  let die!: (e: EgressError) => void;
  const died = new Promise<EgressError>((r) => (die = r));
  const listeners: ((s: PageSignal) => void)[] = [];
  context.on('close', () => closing || die(errors.chromeExited()));

  const onConsole = async (m: ConsoleMessage) => {
    let signal = SIGNALS[m.text()];
    if (!signal && /START_RECORDING|END_RECORDING/.test(m.text())) {
      // As the Go egress: any one argument whose JSON value is exactly the keyword.
      for (const a of m.args()) signal ??= SIGNALS[String(await a.jsonValue().catch(() => ''))];
    }
    if (signal) for (const l of listeners) l(signal);
  };
  const watch = (page: Page, log: Logger) => {
    page.on('console', (m) => void onConsole(m));
    page.on('crash', () => closing || die(errors.pageCrashed()));
    page.on('pageerror', (e) => log.debug('page error', { error: e.message }));
  };

  const load = async (url: string, log: Logger) => {
    let last: EgressError = errors.pageLoad('timed out');
    let page: Page | undefined = context.pages()[0];
    for (let attempt = 1; attempt <= PAGE_LOAD_ATTEMPTS; attempt++) {
      if (attempt > 1) {
        await page?.close().catch(() => undefined);
        page = undefined;
      }
      page ??= await context.newPage();
      watch(page, log);
      try {
        const response = await page.goto(url, { timeout: PAGE_LOAD_TIMEOUT_MS, waitUntil: 'load' });
        if (response && response.status() >= 400) throw errors.pageLoad(response.statusText() || String(response.status()));
      } catch (err) {
        if (!(err instanceof Error) || err instanceof EgressError) throw err;
        const net = /net::ERR_[A-Z_]+/.exec(err.message)?.[0];
        if (err instanceof pwErrors.TimeoutError) last = errors.pageLoad('timed out');
        else if (net && RETRYABLE.has(net)) last = errors.pageLoad(net);
        else throw errors.pageLoad(net ?? err.message.split('\n')[0]!);
        log.warn('page load failed, retrying', { attempt, error: last.message });
        continue;
      }
      const text = await page.$eval('div.error', (el) => (el as unknown as { innerText: string }).innerText).catch(() => '');
      if (text.trim()) throw errors.templateError(text.trim());
      return;
    }
    throw last;
  };

  return {
    load,
    preload: async (url) => {
      await context.pages()[0]?.goto(url, { timeout: PAGE_LOAD_TIMEOUT_MS, waitUntil: 'load' }).catch(() => undefined);
    },
    onSignal: (cb) => void listeners.push(cb),
    died,
    close: async () => {
      closing = true;
      await Promise.race([context.close().catch(() => undefined), new Promise((r) => setTimeout(r, CLOSE_TIMEOUT_MS))]);
      // Whatever of the browser's group is still there (a browser that hung on close).
      if (pid !== undefined) killGroup(pid);
      await rm(o.userDataDir, { recursive: true, force: true });
    },
  };
}
