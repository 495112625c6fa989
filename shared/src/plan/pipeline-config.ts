// The plan of one egress: what `planPipeline(request, config)` (shared/src/plan/plan.ts) returns
// at StartEgress, before anything starts. The supervisor computes it once and hands it to the
// handler over IPC (it is plain JSON: no bigint, no classes). Every later part reads it: the
// controller, the sources, the gst argument builders and the sinks. Nothing re-reads the request.
import type { StorageConfig } from '../config/types.ts';
import type { RequestKind } from './request.ts';

/** Where an output's files go, resolved and checked at plan time (egress-behaviour §5.4). */
export type StorageTarget = StorageConfig;

export type AudioChannel = 'both' | 'left' | 'right';
export type AudioMixing = 'default' | 'dual_channel_agent' | 'dual_channel_alternate';

/** One v2 AudioRoute: the first route that matches a track decides its channel. */
export interface AudioRoute {
  match: { trackId: string } | { identity: string } | { participantKind: ParticipantKindName };
  channel: AudioChannel;
}

/** livekit.ParticipantInfo.Kind, lower-cased (`standard`, `ingress`, `egress`, `sip`, `agent`). */
export type ParticipantKindName = 'standard' | 'ingress' | 'egress' | 'sip' | 'agent';

/** What an SDK source subscribes to (egress-behaviour §10.1). */
export type SdkSubscription =
  /** v1 track egress, and v2 media with PASSTHROUGH: one track, its codec picks the container. */
  | { kind: 'track'; trackId: string }
  | { kind: 'track_composite'; audioTrackId?: string; videoTrackId?: string }
  /** Camera + microphone, or (screenShare) screen share + screen share audio; late tracks too. */
  | { kind: 'participant'; identity: string; screenShare: boolean }
  /** Audio-only room composite / template with no layout and no custom URL: every audio track mixed. */
  | { kind: 'room_audio'; mixing: AudioMixing }
  | {
      kind: 'media';
      video?: { trackId: string } | { identity: string; preferScreenShare: boolean };
      /** captureAll: every audio track to both channels, routes ignored (the Go quirk, §1.8). */
      audio?: { captureAll: boolean; routes: AudioRoute[] };
    };

export type SourceConfig =
  | { type: 'sdk'; subscription: SdkSubscription }
  | {
      type: 'web';
      /** The page to load: the web request's URL, or the template URL built from base + layout. */
      url: string;
      /** Template (room composite) pages get a token and ws_url added to the URL; web pages do not. */
      template?: { baseUrl: string; layout: string };
      awaitStartSignal: boolean;
    };

export type AudioCodec = 'opus' | 'aac' | 'mp3' | 'raw';
export type VideoCodec = 'h264';
export type H264Profile = 'baseline' | 'main' | 'high';

export interface AudioEncoding {
  codec: AudioCodec;
  bitrateKbps: number;
  /** Sample rate: 48000 for Opus and raw, audio_frequency (default 44100) for AAC and MP3. */
  frequency: number;
  channels: 2;
}

export interface VideoEncoding {
  codec: VideoCodec;
  profile: H264Profile;
  width: number;
  height: number;
  /** Xvfb colour depth (8, 16, 24); web sources only. */
  depth: number;
  framerate: number;
  bitrateKbps: number;
  /** Seconds; 0 = the encoder's default. Already resolved by the key-frame rules (§2.4). */
  keyFrameIntervalS: number;
}

/** The file container. `track` outputs pick theirs from the track's codec once subscribed. */
export type FileType = 'mp4' | 'ogg' | 'mp3' | 'webm';

export interface FileOutputPlan {
  type: 'file';
  /** undefined for track egress / passthrough: known once the track's codec is (§1.7). */
  fileType?: FileType;
  /**
   * The storage path after the first naming pass (room placeholders, {time}, {utc}, {retry}), cleaned,
   * with the default name and extension applied when fileType is known. SDK placeholders
   * ({publisher_identity}, {track_id}, {track_type}, {track_source}) are still literal: the handler
   * applies them after subscribing (`resolveSdkPlaceholders`) and re-checks path safety.
   */
  filepath: string;
  disableManifest: boolean;
  storage: StorageTarget;
}

export type SegmentSuffix = 'index' | 'timestamp';

export interface SegmentsOutputPlan {
  type: 'segments';
  /** Storage directory of the playlists (ends with `/`, or empty). */
  storageDir: string;
  /** File names inside storageDir. */
  playlistName: string;
  livePlaylistName?: string;
  /** Segment file prefix, relative to storageDir (may hold a sub-directory). */
  segmentPrefix: string;
  suffix: SegmentSuffix;
  segmentDurationS: number;
  disableManifest: boolean;
  storage: StorageTarget;
}

export interface StreamOutputPlan {
  type: 'stream';
  protocol: 'rtmp' | 'srt';
  /** Validated and expanded (mux:// → rtmps://…); twitch:// stays as given (resolved at start). */
  urls: string[];
}

export interface WebsocketOutputPlan {
  type: 'websocket';
  url: string;
}

export type ImageSuffix = 'index' | 'timestamp' | 'none_overwrite';

export interface ImageOutputPlan {
  type: 'images';
  captureIntervalS: number;
  /** 0 = the source's size (SDK: the video track's published size, else the encoding size). */
  width: number;
  height: number;
  storageDir: string;
  /** File name base inside storageDir. */
  prefix: string;
  /** ImagesInfo.filename_prefix: the cleaned, templated request prefix. */
  filenamePrefix: string;
  suffix: ImageSuffix;
  disableManifest: boolean;
  storage: StorageTarget;
}

export type OutputPlan = FileOutputPlan | SegmentsOutputPlan | StreamOutputPlan | WebsocketOutputPlan | ImageOutputPlan;
export type OutputType = OutputPlan['type'];

export interface PipelineConfig {
  egressId: string;
  kind: RequestKind;
  /** Empty for web egress. */
  roomName: string;
  roomId: string;
  retryCount: number;
  /** Request token, else minted by the handler from api_key/api_secret. */
  token: string;
  wsUrl: string;
  source: SourceConfig;
  /** Absent = audio disabled. */
  audio?: AudioEncoding;
  /** Absent = video disabled. For passthrough, present only as the codec-agnostic flag below. */
  video?: VideoEncoding;
  /** Track egress and PASSTHROUGH: video is remuxed, not re-encoded; audio becomes Opus. */
  passthrough: boolean;
  /** At most one file, one segments, one stream or websocket; any number of images. */
  outputs: OutputPlan[];
  /** Default name identifier: track id (track/passthrough), room name, or `web`. */
  identifier: string;
  /** Write `<egress_id>.json` (backup storage configured, or some output keeps its manifest). */
  manifest: boolean;
  /** The session limit that applies (min over the output kinds present), 0 = none. */
  maxDurationMs: number;
}
