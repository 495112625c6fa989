// livekit-server's Egress API as the CLI uses it: livekit-server-sdk's EgressClient, with every
// failure turned into a one-line CliError.
import type { EgressInfo } from '@livekit/protocol';
import { EgressClient, type ListEgressOptions } from 'livekit-server-sdk';
import type { Connection } from './connection.ts';
import { fromServerCall } from './errors.ts';
import { encodedOutputs, encodingOptions, trackOutput, type StartRequest } from './requests.ts';

/** The calls the CLI makes; `EgressApi` wraps an EgressClient (tests may stub it). */
export interface EgressApi {
  readonly url: string;
  start(start: StartRequest, source: string): Promise<EgressInfo>;
  list(options: ListEgressOptions): Promise<EgressInfo[]>;
  stop(egressId: string): Promise<EgressInfo>;
  updateStream(egressId: string, add: string[], remove: string[]): Promise<EgressInfo>;
  updateLayout(egressId: string, layout: string): Promise<EgressInfo>;
}

/** Sends a start request through the EgressClient method of its kind. */
export function startWith(client: EgressClient, start: StartRequest, source: string): Promise<EgressInfo> {
  switch (start.kind) {
    case 'track': {
      const r = start.request;
      return client.startTrackEgress(r.roomName, trackOutput(r, source), r.trackId, r.webhooks);
    }
    case 'room-composite': {
      const r = start.request;
      return client.startRoomCompositeEgress(r.roomName, encodedOutputs(r, source), {
        layout: r.layout,
        encodingOptions: encodingOptions(r),
        audioOnly: r.audioOnly,
        videoOnly: r.videoOnly,
        customBaseUrl: r.customBaseUrl,
        audioMixing: r.audioMixing,
        webhooks: r.webhooks,
      });
    }
    case 'web': {
      const r = start.request;
      return client.startWebEgress(r.url, encodedOutputs(r, source), {
        encodingOptions: encodingOptions(r),
        audioOnly: r.audioOnly,
        videoOnly: r.videoOnly,
        awaitStartSignal: r.awaitStartSignal,
        webhooks: r.webhooks,
      });
    }
    case 'participant': {
      const r = start.request;
      return client.startParticipantEgress(r.roomName, r.identity, encodedOutputs(r, source), {
        screenShare: r.screenShare,
        encodingOptions: encodingOptions(r),
        webhooks: r.webhooks,
      });
    }
    case 'track-composite': {
      const r = start.request;
      return client.startTrackCompositeEgress(r.roomName, encodedOutputs(r, source), {
        audioTrackId: r.audioTrackId,
        videoTrackId: r.videoTrackId,
        encodingOptions: encodingOptions(r),
        webhooks: r.webhooks,
      });
    }
  }
}

/**
 * livekit-server answers StartEgress within its own timeouts (`unavailable: no response from
 * servers` after about 20 s when no node bids): the CLI waits longer, so the server's answer shows.
 */
export function egressApi(conn: Connection, requestTimeoutSec = 60): EgressApi {
  // No region failover: that is for LiveKit Cloud, and it logs retries on the console.
  const client = new EgressClient(conn.url, conn.apiKey, conn.apiSecret, { failover: false, requestTimeout: requestTimeoutSec });
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw fromServerCall(err, conn.url);
    }
  };
  return {
    url: conn.url,
    start: (start, source) => call(() => startWith(client, start, source)),
    list: (options) => call(() => client.listEgress(options)),
    stop: (egressId) => call(() => client.stopEgress(egressId)),
    updateStream: (egressId, add, remove) => call(() => client.updateStream(egressId, add, remove)),
    updateLayout: (egressId, layout) => call(() => client.updateLayout(egressId, layout)),
  };
}
