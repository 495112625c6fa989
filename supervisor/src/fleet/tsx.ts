// Handlers and the recovery handler run the way the node itself runs: from the TypeScript sources
// through the tsx loader (tests, a checkout with no build), or as the compiled JavaScript in dist/
// with no loader (bin/egress after `npm run build`, the Docker image, the systemd unit).
import { fileURLToPath } from 'node:url';

/** True when this module is the TypeScript source (run through tsx), false in dist/. */
export const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** Node flags for a handler process: the tsx loader when running from sources, none in dist/. */
export const TSX_EXEC_ARGV: string[] = FROM_SOURCE ? ['--import', import.meta.resolve('tsx')] : [];

/** A handler entry point (`main`, `recover`) of the same build as this module: handler/src/NAME.ts, or dist/handler/src/NAME.js. */
export const handlerEntry = (name: string): string =>
  fileURLToPath(new URL(`../../../handler/src/${name}.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url));
