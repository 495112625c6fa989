// The template server on `template_port` (127.0.0.1): a static file server for the bundled default room-composite
// template build (templates/dist). Until that build exists, `/` serves a placeholder page.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@egress/shared/logging.ts';
import { errorMessage, rejectMethod, sendText } from './util.ts';

/** <repo>/templates/dist, from supervisor/src/http/. */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL('../../../templates/dist/', import.meta.url));

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

export const contentTypeOf = (file: string): string =>
  CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';

export const PLACEHOLDER_HTML = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>LiveKit Egress templates</title></head>
<body>
<h1>LiveKit Egress</h1>
<p>The default room-composite template is not installed yet: it comes with the web-source feature.</p>
</body>
</html>
`;

const isDirectory = async (p: string): Promise<boolean> => (await stat(p).catch(() => undefined))?.isDirectory() ?? false;

/**
 * The file under `root` a URL path names, or an HTTP status: 400 for a malformed or escaping path, 404 otherwise.
 * Directories map to their index.html; symlinks must resolve inside root.
 */
export async function resolveFile(root: string, urlPath: string): Promise<string | 400 | 404> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return 400;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return 400;
  if (decoded.split('/').some((segment) => segment === '..')) return 400;
  const realRoot = await realpath(root).catch(() => undefined);
  if (realRoot === undefined) return 404;
  let file = path.join(realRoot, path.normalize(decoded));
  if (!isInside(realRoot, file)) return 400;
  if (await isDirectory(file)) file = path.join(file, 'index.html');
  const real = await realpath(file).catch(() => undefined);
  if (real === undefined) return 404;
  if (!isInside(realRoot, real)) return 404;
  const info = await stat(real).catch(() => undefined);
  return info?.isFile() ? real : 404;
}

const isInside = (root: string, p: string): boolean => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

export function templatesHandler(log: Logger, dir: string = DEFAULT_TEMPLATES_DIR): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (rejectMethod(req, res, ['GET', 'HEAD'])) return;
    const serve = async (): Promise<void> => {
      const rawPath = (req.url ?? '/').split(/[?#]/, 1)[0] ?? '/';
      if (!rawPath.startsWith('/')) {
        sendText(res, 400, 'bad request\n');
        return;
      }
      if (!(await isDirectory(dir))) {
        if (rawPath === '/' || rawPath === '/index.html') sendText(res, 200, PLACEHOLDER_HTML, CONTENT_TYPES['.html']);
        else sendText(res, 404, 'not found\n');
        return;
      }
      const file = await resolveFile(dir, rawPath);
      if (file === 400) {
        sendText(res, 400, 'bad request\n');
        return;
      }
      if (file === 404) {
        sendText(res, 404, 'not found\n');
        return;
      }
      const { size } = await stat(file);
      res.writeHead(200, { 'Content-Type': contentTypeOf(file), 'Content-Length': size, 'Cache-Control': 'no-cache' });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const stream = createReadStream(file);
      stream.on('error', (err) => {
        log.warn('templates: read failed', { file, error: err.message });
        res.destroy(err);
      });
      stream.pipe(res);
    };
    serve().catch((err: unknown) => {
      log.warn('templates: request failed', { url: req.url, error: errorMessage(err) });
      if (res.headersSent) res.destroy();
      else sendText(res, 500, 'internal error\n');
    });
  };
}
