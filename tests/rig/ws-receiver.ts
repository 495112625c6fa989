// A websocket receiver on 127.0.0.1 for the egress's raw-PCM websocket output: it keeps the
// request headers, counts binary bytes and records the text messages with their arrival times.
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';

export interface WsReceiver {
  url: string;
  connections: number;
  headers?: Record<string, string | string[] | undefined>;
  binaryBytes: number;
  binaryMessages: number;
  texts: { at: number; text: string }[];
  closed: Promise<void>;
  stop(): Promise<void>;
}

export async function startWsReceiver(): Promise<WsReceiver> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => server.once('listening', () => r()));
  let closedWith!: () => void;
  const r: WsReceiver = {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/audio`,
    connections: 0,
    binaryBytes: 0,
    binaryMessages: 0,
    texts: [],
    closed: new Promise((res) => (closedWith = res)),
    // close() waits for clients to leave; an egress still sending would hold it open.
    stop: () => new Promise((res) => {
      for (const c of server.clients) c.terminate();
      server.close(() => res());
    }),
  };
  server.on('connection', (ws, req) => {
    r.connections++;
    r.headers = req.headers;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        r.binaryBytes += (data as Buffer).length;
        r.binaryMessages++;
      } else {
        r.texts.push({ at: Date.now(), text: data.toString() });
      }
    });
    ws.on('close', () => closedWith());
  });
  return r;
}
