import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** Ports this process handed out: the OS may offer a just-closed port again at once. */
const handedOut = new Set<number>();

/** A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it), never the same one twice. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await anyFreePort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: listening socket has no port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Same as freePort, for UDP (livekit-server's ICE port is UDP). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.unref();
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}
