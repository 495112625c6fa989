// What every source gives the controller: it starts, then either pushes media into a SourceSink (the
// job's media timeline; SDK sources push decoded frames per track) or hands gst what to capture
// itself (a web source's display and sound, a track's RTP), until it ends by itself or is closed.
import type { EgressError } from '@egress/shared/errors.ts';
import type { CaptureInput } from '../pipeline/encode.ts';
import type { RawFrame } from '../media/video-timeline.ts';
import type { Role, TrackSourceName } from './sdk/selection.ts';

export interface TrackInfo {
  trackId: string;
  kind: 'audio' | 'video';
  /** Lower-cased, e.g. `audio/opus`, `video/vp8`. */
  mimeType: string;
  source: TrackSourceName;
  publisherIdentity: string;
  /** Published size (video), 0 when unknown. */
  width: number;
  height: number;
}

export interface SourceSink {
  trackAdded(info: TrackInfo, role: Role): void;
  trackRemoved(trackId: string): void;
  trackMuted(trackId: string, muted: boolean): void;
  /** Interleaved S16 samples. */
  audioFrame(trackId: string, data: Int16Array, samplesPerChannel: number, sampleRate: number, channels: number): void;
  videoFrame(trackId: string, frame: RawFrame, timestampUs: bigint): void;
  /** How long the receiver holds each kind before handing frames over (jitter buffers), in ms. */
  receiveDelays?(audioMs: number, videoMs: number): void;
}

interface SourceLife {
  /** Settles when the source ends by itself: room closed, participant left, tracks gone, page ended, or a failure. */
  readonly ended: Promise<{ reason: string; error?: EgressError }>;
  close(): Promise<void>;
}

/** A source that pushes frames. */
export interface Source extends SourceLife {
  /** Connects and takes the initial tracks; resolves with them (naming needs them), or throws the request's error. */
  start(sink: SourceSink): Promise<TrackInfo[]>;
}

/** A source that gst captures. */
export interface CaptureSource extends SourceLife {
  /** Gets ready to be captured (nothing is recorded yet); resolves with what gst captures, or throws the request's error. */
  prepare(): Promise<CaptureInput>;
  /** Settles when recording may begin: the page's start signal, or at once if it is not awaited. */
  readonly started: Promise<void>;
  /** gst is capturing: what the source sends it goes from now on; settles once media reached gst. */
  capturing?(): Promise<void>;
}
