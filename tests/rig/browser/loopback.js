/* global window, RTCIceCandidate, RTCPeerConnectionIceEvent */
// Keeps the page's WebRTC on 127.0.0.1. Chromium runs with --webrtc-ip-handling-policy=
// default_public_interface_only, so libwebrtc does not enumerate interfaces: it gathers one UDP
// socket bound to the wildcard address (0.0.0.0 / ::) and names it in its host candidate by the
// default route's address (or an mDNS .local name). Sent to livekit-server's only candidate,
// 127.0.0.1, the kernel picks 127.0.0.1 as the source. What is signalled must say so too, or the
// server would send its checks to the host's other address: IPv4 UDP host candidates are rewritten
// to 127.0.0.1 (same port: the wildcard socket receives there), everything else is dropped.
(() => {
  'use strict';
  const Native = window.RTCPeerConnection;
  const dropped = [];
  window.__loopback = { dropped };

  /** Returns the candidate line rewritten to 127.0.0.1, or undefined to drop it. */
  function loopbackCandidate(line) {
    // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
    const m = /^(a=)?candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ (\S+)(.*)$/i.exec(line);
    if (!m) return undefined;
    const [, a = '', foundation, component, transport, priority, address, port, type, rest] = m;
    if (transport.toLowerCase() !== 'udp' || type !== 'host') return void dropped.push(line);
    const ipv4 = /^\d+\.\d+\.\d+\.\d+$/.test(address);
    if (!(ipv4 || address.endsWith('.local'))) return void dropped.push(line);
    return `${a}candidate:${foundation} ${component} ${transport} ${priority} 127.0.0.1 ${port} typ host${rest}`;
  }

  function loopbackSdp(sdp) {
    if (!sdp) return sdp;
    return sdp
      .split('\r\n')
      .flatMap((line) => {
        if (!line.startsWith('a=candidate:')) return [line];
        const rewritten = loopbackCandidate(line);
        return rewritten ? [rewritten] : [];
      })
      .join('\r\n');
  }

  function loopbackEvent(event) {
    const c = event.candidate;
    if (!c || !c.candidate) return event; // end of candidates
    const rewritten = loopbackCandidate(c.candidate);
    if (!rewritten) return undefined;
    const candidate = new RTCIceCandidate({ candidate: rewritten, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment });
    return new RTCPeerConnectionIceEvent('icecandidate', { candidate });
  }

  const wrapped = new WeakMap();
  class LoopbackPeerConnection extends Native {
    constructor(config, ...rest) {
      // No STUN/TURN: nothing to learn beyond loopback, and no packet to any other address.
      super({ ...(config || {}), iceServers: [] }, ...rest);
      window.__loopback.pcs = (window.__loopback.pcs || []).concat(this);
    }
    setConfiguration(config) {
      return super.setConfiguration({ ...(config || {}), iceServers: [] });
    }
    addEventListener(type, listener, options) {
      if (type !== 'icecandidate' || typeof listener !== 'function') return super.addEventListener(type, listener, options);
      let w = wrapped.get(listener);
      if (!w) {
        w = (e) => {
          const e2 = loopbackEvent(e);
          if (e2) listener.call(this, e2);
        };
        wrapped.set(listener, w);
      }
      return super.addEventListener(type, w, options);
    }
    removeEventListener(type, listener, options) {
      return super.removeEventListener(type, (type === 'icecandidate' && wrapped.get(listener)) || listener, options);
    }
    set onicecandidate(listener) {
      super.onicecandidate = listener ? (e) => { const e2 = loopbackEvent(e); if (e2) listener.call(this, e2); } : null;
    }
    get onicecandidate() {
      return super.onicecandidate;
    }
    async createOffer(...args) {
      const d = await super.createOffer(...args);
      return { type: d.type, sdp: stripSdp(d.sdp) };
    }
    async createAnswer(...args) {
      const d = await super.createAnswer(...args);
      return { type: d.type, sdp: stripSdp(d.sdp) };
    }
    get localDescription() {
      return describe(super.localDescription);
    }
    get currentLocalDescription() {
      return describe(super.currentLocalDescription);
    }
    get pendingLocalDescription() {
      return describe(super.pendingLocalDescription);
    }
  }
  // Descriptions set locally keep their candidates out (libwebrtc ignores them there anyway); what
  // is read back for signalling is rewritten.
  function stripSdp(sdp) {
    return sdp ? sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:')).join('\r\n') : sdp;
  }
  function describe(d) {
    return d ? { type: d.type, sdp: loopbackSdp(d.sdp), toJSON() { return { type: this.type, sdp: this.sdp }; } } : d;
  }
  window.RTCPeerConnection = LoopbackPeerConnection;
  window.webkitRTCPeerConnection = LoopbackPeerConnection;
})();
