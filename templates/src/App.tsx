import { useEffect, useState } from 'react';
import { RoomAudioRenderer, RoomContext } from '@livekit/components-react';
import { LogLevel, Room, setLogLevel } from 'livekit-client';
import { EgressHelper } from './egress-helper.ts';
import { Stage } from './Stage.tsx';
import { useStartSignal } from './start-signal.ts';

// The egress reads every console call for its start/end signals; keep livekit-client's chatter out.
setLogLevel(LogLevel.warn);

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function readParams(): { url: string; token: string } | undefined {
  try {
    return { url: EgressHelper.getLiveKitURL(), token: EgressHelper.getAccessToken() };
  } catch {
    return undefined;
  }
}

/** The page the egress opens: `?url=<ws url>&token=<recorder token>&layout=<layout>`. */
export function App() {
  const [params] = useState(readParams);
  if (!params) return <div className="error">missing required params url and token</div>;
  return <RoomPage url={params.url} token={params.token} />;
}

function RoomPage({ url, token }: { url: string; token: string }) {
  // One Room for the page's life: a layout change re-renders the tiles and never touches the connection.
  // adaptiveStream: tracks off the page (single-speaker, past the carousel) are paused at the server
  // and small tiles get small layers, so the page decodes only what it shows.
  const [room] = useState(() => new Room({ adaptiveStream: true }));
  const [layout, setLayout] = useState(() => EgressHelper.getLayout());
  const [error, setError] = useState<string>();

  useEffect(() => {
    let unmounted = false;
    // Registered before setRoom, which calls it at once when the metadata already names a layout. The
    // SDK hands over whatever the JSON's `layout` is (undefined too); getLayout falls back to the URL's.
    EgressHelper.onLayoutChanged(() => setLayout(EgressHelper.getLayout()));
    room.connect(url, token).then(
      () => {
        if (unmounted) return;
        try {
          // metadata updates → onLayoutChanged; Disconnected → END_RECORDING
          EgressHelper.setRoom(room);
        } catch (err) {
          // metadata that is not JSON: the layout stays the URL's
          console.warn(`egress template: unreadable participant metadata: ${errorText(err)}`);
        }
      },
      (err: unknown) => {
        if (!unmounted) setError(errorText(err));
      },
    );
    return () => {
      unmounted = true;
      void room.disconnect();
    };
  }, [room, url, token]);

  useStartSignal(room);

  if (error !== undefined) return <div className="error">{error}</div>;
  return (
    <RoomContext.Provider value={room}>
      <Stage layout={layout} />
      <RoomAudioRenderer />
    </RoomContext.Provider>
  );
}
