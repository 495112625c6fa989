/* global window, MediaStreamTrackProcessor, performance, RTCRtpSender */
// The page side of tests/rig/browser-publisher.ts: joins with livekit-client, publishes Chromium's
// fake camera/microphone (the rig's marker media looped from y4m/wav), and answers Node through
// window.rig (called with page.evaluate).
(() => {
  'use strict';
  const LK = window.LivekitClient;
  const state = { room: undefined, tracks: {}, flashes: [], firstFrameAt: undefined };

  // Luma of a small patch at the top left of each captured frame, on a clone of the camera track:
  // the marker flash (Y 235 on a Y 48 background) gives the wall time of media time 0 (mod 1 s).
  async function watchFlashes(track) {
    if (typeof MediaStreamTrackProcessor !== 'function') return;
    const processor = new MediaStreamTrackProcessor({ track });
    const reader = processor.readable.getReader();
    let wasFlash = true; // the file starts on a flash; only onsets after a dark frame count
    const deadline = performance.now() + 4500;
    try {
      while (performance.now() < deadline) {
        const { value: frame, done } = await reader.read();
        if (done) break;
        const now = Date.now();
        try {
          state.firstFrameAt ??= now;
          if (frame.format === 'I420' || frame.format === 'NV12' || frame.format === 'I420A') {
            const rect = { x: 0, y: 0, width: 16, height: 2 };
            const buf = new Uint8Array(frame.allocationSize({ rect }));
            await frame.copyTo(buf, { rect });
            let sum = 0;
            for (let i = 0; i < 16; i++) sum += buf[i];
            const flash = sum / 16 > 200;
            if (flash && !wasFlash) state.flashes.push(now);
            wasFlash = flash;
          } else {
            state.frameFormat = frame.format;
          }
        } finally {
          frame.close();
        }
      }
    } finally {
      reader.cancel().catch(() => {});
      track.stop();
    }
  }

  async function start(o) {
    const room = new LK.Room({ adaptiveStream: false, dynacast: false });
    state.room = room;
    await room.connect(o.url, o.token, { autoSubscribe: false });
    const local = room.localParticipant;
    const result = {};
    const tracks = [];
    const videoOpts = { resolution: { width: o.width, height: o.height, frameRate: o.fps } };
    if (o.video) {
      const video = await LK.createLocalVideoTrack(videoOpts);
      if (o.screenShare) video.source = LK.Track.Source.ScreenShare;
      tracks.push(video);
      state.tracks.video = video;
      void watchFlashes(video.mediaStreamTrack.clone());
    }
    if (o.audio) {
      const audio = await LK.createLocalAudioTrack({ echoCancellation: false, noiseSuppression: false, autoGainControl: false });
      if (o.screenShare) audio.source = LK.Track.Source.ScreenShareAudio;
      tracks.push(audio);
      state.tracks.audio = audio;
    }
    state.openedAt = Date.now();
    for (const track of tracks) {
      const pub = await local.publishTrack(track, {
        source: track.source,
        videoCodec: o.video || undefined,
        simulcast: false,
        // a VP8/H.264 track must not be replaced by a backup codec
        backupCodec: false,
        videoEncoding: { maxBitrate: 1_500_000, maxFramerate: o.fps },
        dtx: false,
        red: false,
      });
      result[track.kind === 'audio' ? 'audioTrackSid' : 'videoTrackSid'] = pub.trackSid;
    }
    return result;
  }

  function sizeOf(track) {
    const s = track.mediaStreamTrack.getSettings();
    return { width: s.width, height: s.height };
  }

  window.rig = {
    start,
    /** What this Chromium can encode. */
    codecs: () => (RTCRtpSender.getCapabilities('video')?.codecs ?? []).map((c) => `${c.mimeType} ${c.sdpFmtpLine ?? ''}`.trim()),
    timing: () => ({ flashes: state.flashes, firstFrameAt: state.firstFrameAt, openedAt: state.openedAt, frameFormat: state.frameFormat }),
    async switchResolution(width, height) {
      const track = state.tracks.video;
      if (!track) throw new Error('no video track');
      await track.mediaStreamTrack.applyConstraints({ width: { exact: width }, height: { exact: height }, resizeMode: 'crop-and-scale' });
      return sizeOf(track);
    },
    size: () => (state.tracks.video ? sizeOf(state.tracks.video) : undefined),
    async unpublish(kind) {
      const track = state.tracks[kind];
      if (!track) return;
      delete state.tracks[kind];
      await state.room.localParticipant.unpublishTrack(track, true);
    },
    /** Outgoing bytes, frame size and the ICE pair in use, per peer connection. */
    async stats() {
      const out = [];
      for (const pc of window.__loopback.pcs ?? []) {
        const report = await pc.getStats();
        const byId = new Map([...report.values()].map((s) => [s.id, s]));
        for (const s of report.values()) {
          if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
            const l = byId.get(s.localCandidateId);
            const r = byId.get(s.remoteCandidateId);
            out.push({ pair: `${l?.address}:${l?.port} -> ${r?.address}:${r?.port}`, bytesSent: s.bytesSent });
          }
          if (s.type === 'outbound-rtp') out.push({ kind: s.kind, codec: byId.get(s.codecId)?.mimeType, frameWidth: s.frameWidth, frameHeight: s.frameHeight, packetsSent: s.packetsSent });
        }
      }
      return { stats: out, dropped: window.__loopback.dropped };
    },
    async stop() {
      for (const t of Object.values(state.tracks)) t.stop();
      await state.room?.disconnect();
    },
  };
})();
