// Pure: Chromium's command line for a web source (egress-behaviour §9.1 step 5), the Go egress's
// flags in its order, then the config's chrome_flags. playwright-core adds its own pipe and profile
// switches; `--enable-automation` is kept out where it is launched (chromium.ts), as Go's
// excludeSwitches does, so the page shows no automation bar.

export interface ChromeFlagOptions {
  width: number;
  height: number;
  /** The X display, e.g. `:12`. */
  display: string;
  /** config.insecure: no web security, insecure content allowed (a template on ws:// from https). */
  insecure: boolean;
  /** config.enable_chrome_sandbox */
  sandbox: boolean;
  /** config.chrome_flags: `true` or "" is a bare switch, `false` drops the switch. */
  extra: Record<string, string | number | boolean>;
}

const FIXED = [
  'no-first-run',
  'no-default-browser-check',
  'disable-gpu',
  'disable-infobars',
  'disable-background-networking',
  'enable-features=NetworkService,NetworkServiceInProcess',
  'disable-background-timer-throttling',
  'disable-backgrounding-occluded-windows',
  'disable-breakpad',
  'disable-client-side-phishing-detection',
  'disable-default-apps',
  'disable-dev-shm-usage',
  'disable-extensions',
  'disable-features=AudioServiceOutOfProcess,site-per-process,Translate,TranslateUI,BlinkGenPropertyTrees',
  'disable-hang-monitor',
  'disable-ipc-flooding-protection',
  'disable-popup-blocking',
  'disable-prompt-on-repost',
  'disable-renderer-backgrounding',
  'disable-sync',
  'force-color-profile=srgb',
  'metrics-recording-only',
  'safebrowsing-disable-auto-update',
  'password-store=basic',
  'use-mock-keychain',
  'kiosk',
  'disable-translate',
  'autoplay-policy=no-user-gesture-required',
  'window-position=0,0',
];

const flag = (name: string, value: string | number | boolean): string[] =>
  value === false ? [] : value === true || value === '' ? [`--${name}`] : [`--${name}=${value}`];

export function chromeFlags(o: ChromeFlagOptions): string[] {
  return [
    ...FIXED.map((f) => `--${f}`),
    `--window-size=${o.width},${o.height}`,
    ...(o.insecure ? ['--disable-web-security', '--allow-running-insecure-content'] : []),
    ...(o.sandbox ? [] : ['--no-sandbox']),
    `--display=${o.display}`,
    ...Object.entries(o.extra).flatMap(([name, value]) => flag(name, value)),
  ];
}
