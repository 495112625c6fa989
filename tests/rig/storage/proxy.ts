// A loopback HTTP proxy for testing proxy_config: CONNECT tunnels (what the S3 back-end uses) and
// absolute-form forwarding, with optional basic auth. It only ever connects to 127.0.0.1.
import { createServer, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { freePort } from '../ports.ts';

export interface TestProxy {
  port: number;
  /** http://127.0.0.1:<port> (no credentials) */
  url: string;
  /** host:port of every CONNECT tunnel opened. */
  connects: string[];
  /** Absolute URLs forwarded. */
  forwards: string[];
  /** Requests refused for missing/wrong credentials (407). */
  refused: number;
  stop(): Promise<void>;
}

export async function startProxy(opts: { username?: string; password?: string } = {}): Promise<TestProxy> {
  const port = await freePort();
  const expected = opts.username ? `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}` : undefined;
  const state = { connects: [] as string[], forwards: [] as string[], refused: 0 };
  const sockets = new Set<Socket>();
  const authorized = (header: string | undefined) => !expected || header === expected;

  const server: Server = createServer((req, res) => {
    if (!authorized(req.headers['proxy-authorization'])) {
      state.refused++;
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    const target = new URL(req.url ?? '');
    if (target.hostname !== '127.0.0.1') {
      res.writeHead(403).end('loopback only');
      return;
    }
    state.forwards.push(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = request({ host: '127.0.0.1', port: target.port, method: req.method, path: target.pathname + target.search, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (!authorized(req.headers['proxy-authorization'])) {
      state.refused++;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const [host, portText] = (req.url ?? '').split(':');
    if (host !== '127.0.0.1') {
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    state.connects.push(req.url ?? '');
    const upstream = connect({ host: '127.0.0.1', port: Number(portText) }, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get connects() { return state.connects; },
    get forwards() { return state.forwards; },
    get refused() { return state.refused; },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
