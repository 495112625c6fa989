// Every output path stays inside its allowed root. Not in the Go egress: there a request (or a
// publisher identity substituted into `{publisher_identity}`) could write anywhere the process can.
// Run at plan time on the templated path, and again by the handler after the SDK placeholders.
import path from 'node:path/posix';
import { errors } from '../errors.ts';
import type { StorageTarget } from './pipeline-config.ts';
import { isLocalTarget } from './storage.ts';

/** The forms a path may take on its way to a file system or object store: raw, `\` as `/`, percent-decoded. */
function variants(p: string): string[] {
  const slashed = p.replace(/\\/g, '/');
  let decoded = slashed;
  // Decode repeatedly: `%252e` is `%2e` after one pass, and some stores decode keys again.
  for (let i = 0; i < 3; i++) {
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      next = decoded.replace(/%2e/gi, '.').replace(/%2f/gi, '/').replace(/%5c/gi, '/').replace(/%00/g, '\0');
    }
    next = next.replace(/\\/g, '/');
    if (next === decoded) break;
    decoded = next;
  }
  return decoded === slashed ? [slashed] : [slashed, decoded];
}

/** Where `p` lands under `root`; absolute paths stay absolute. A relative root is compared as if rooted at `/`. */
function inside(root: string, p: string): boolean {
  const rootAbs = path.normalize(path.isAbsolute(root) ? root : `/${root}`).replace(/\/+$/, '') || '/';
  let target: string;
  if (path.isAbsolute(p)) {
    if (!path.isAbsolute(root)) return false;
    target = path.normalize(p);
  } else {
    target = path.normalize(path.join(rootAbs, p));
  }
  target = target.replace(/\/+$/, '') || '/';
  return rootAbs === '/' ? true : target === rootAbs || target.startsWith(`${rootAbs}/`);
}

/**
 * Refuses (invalid_argument, naming `field`) a storage path with a NUL byte; on local disk one that
 * resolves outside the target's directory (local_output_dir); in a cloud store one with a `..`
 * segment. Raw, backslash and percent-encoded forms are all checked.
 */
export function checkOutputPath(storagePath: string, storage: StorageTarget, field: string): void {
  const forms = variants(storagePath);
  if (storagePath.includes('\0') || forms.some((f) => f.includes('\0'))) throw errors.pathNul(field);
  if (isLocalTarget(storage)) {
    const root = storage.localDir || '.';
    for (const f of forms) if (!inside(root, f)) throw errors.pathOutsideRoot(field, root);
  } else {
    for (const f of forms) if (f.split('/').includes('..')) throw errors.pathDotDot(field);
  }
}
