// PASSTHROUGH (preset 8): a v2 media request selecting exactly one track into exactly one DEFAULT file
// (egress-behaviour §1.8). It then behaves like a v1 track egress.
import { EncodedFileType, type StartEgressRequest as V2Request, type ExportReplayRequest } from '@livekit/protocol';
import { errors } from '../errors.ts';

/** The one track a passthrough request selects; throws the Go egress's `passthrough …` field errors. */
export function passthroughTrackId(r: V2Request | ExportReplayRequest): string {
  const bad = (what: string) => errors.invalidField(`passthrough ${what}`);
  if (r.source.case !== 'media') throw bad('source');
  const m = r.source.value;
  const tracks: string[] = [];
  if (m.video.case === 'participantVideo') throw bad('participant_video');
  if (m.video.case === 'videoTrackId') {
    if (!m.video.value) throw bad('video_track_id');
    tracks.push(m.video.value);
  }
  if (m.audio) {
    if (m.audio.captureAll) throw bad('capture_all');
    if (m.audio.routes.length > 1) throw bad('audio routes');
    const route = m.audio.routes[0];
    if (route) {
      if (route.match.case !== 'trackId') throw bad('audio route match');
      if (!route.match.value) throw bad('audio route track_id');
      tracks.push(route.match.value);
    }
  }
  if (tracks.length !== 1) throw bad('track_id');
  if (r.outputs.length !== 1) throw bad('outputs');
  const out = r.outputs[0]!;
  if (out.config.case !== 'file') throw bad('output');
  if (out.config.value.fileType !== EncodedFileType.DEFAULT_FILETYPE) throw bad('file_type');
  return tracks[0]!;
}
