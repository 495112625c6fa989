// Image outputs (egress-behaviour §4.5).
import { ImageCodec, ImageFileSuffix, type ImageOutput } from '@livekit/protocol';
import { errors } from '../../errors.ts';
import { applyPlaceholders, cleanPath, formatTime, splitPath, type NamingContext } from '../naming.ts';
import { checkOutputPath } from '../path-safety.ts';
import type { ImageOutputPlan, ImageSuffix, StorageTarget } from '../pipeline-config.ts';

const DEFAULT_CAPTURE_INTERVAL_S = 10;

const SUFFIX: Record<number, ImageSuffix> = {
  [ImageFileSuffix.IMAGE_SUFFIX_INDEX]: 'index',
  [ImageFileSuffix.IMAGE_SUFFIX_TIMESTAMP]: 'timestamp',
  [ImageFileSuffix.IMAGE_SUFFIX_NONE_OVERWRITE]: 'none_overwrite',
};

/** `size`: the encoding size for web sources; 0×0 for SDK sources (the track's size, known later). */
export function planImages(
  o: ImageOutput,
  identifier: string,
  ctx: NamingContext,
  storage: StorageTarget,
  size: { width: number; height: number },
): ImageOutputPlan {
  if (o.imageCodec !== ImageCodec.IC_DEFAULT && o.imageCodec !== ImageCodec.IC_JPEG) throw errors.noCompatibleCodec();
  const suffix = SUFFIX[o.filenameSuffix];
  if (!suffix) throw errors.invalidField('filename_suffix');
  const retry = ctx.retryCount ?? 0;
  if (retry > 0 && o.filenamePrefix !== '' && !o.filenamePrefix.endsWith('/') && !o.filenamePrefix.includes('{retry}')) throw errors.retryUnsupported();
  const templated = applyPlaceholders(o.filenamePrefix, ctx);
  checkOutputPath(templated, storage, 'filename_prefix');
  const filenamePrefix = cleanPath(templated);
  const [storageDir, base] = splitPath(filenamePrefix);
  const plan: ImageOutputPlan = {
    type: 'images',
    captureIntervalS: o.captureInterval > 0 ? o.captureInterval : DEFAULT_CAPTURE_INTERVAL_S,
    width: o.width > 0 ? o.width : size.width,
    height: o.height > 0 ? o.height : size.height,
    storageDir,
    prefix: base || `${identifier}-${formatTime(ctx.now)}${retry ? `-${retry}` : ''}`,
    filenamePrefix,
    suffix,
    disableManifest: o.disableManifest,
    storage,
  };
  checkOutputPath(plan.storageDir + plan.prefix, storage, 'filename_prefix');
  return plan;
}
