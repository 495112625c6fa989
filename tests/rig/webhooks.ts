import { createServer, type IncomingMessage } from 'node:http';
import { WebhookReceiver, type WebhookEvent } from 'livekit-server-sdk';
import { freePort } from './ports.ts';

export interface WebhookSink {
  url: string;
  /** validated events, in arrival order */
  events: WebhookEvent[];
  /** requests that failed validation (answered 401) */
  rejected: string[];
  /** Resolves with the first event (already received or future) matching pred. */
  waitFor(pred: (e: WebhookEvent) => boolean, timeoutMs: number): Promise<WebhookEvent>;
  stop(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * HTTP endpoint on 127.0.0.1 that checks webhook signatures like a real LiveKit app does.
 * `port` is for a server whose webhook URL is already configured; by default a free one.
 */
export async function startWebhookReceiver(apiKey: string, apiSecret: string, port?: number): Promise<WebhookSink> {
  const receiver = new WebhookReceiver(apiKey, apiSecret);
  const events: WebhookEvent[] = [];
  const rejected: string[] = [];
  const waiters = new Set<(e: WebhookEvent) => void>();

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      try {
        const event = await receiver.receive(body, req.headers.authorization);
        events.push(event);
        res.writeHead(200).end();
        for (const notify of waiters) notify(event);
      } catch (err) {
        rejected.push(`${err instanceof Error ? err.message : String(err)}: ${body.slice(0, 200)}`);
        res.writeHead(401).end();
      }
    })();
  });

  const listenPort = port ?? (await freePort());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', resolve);
  });

  const waitFor = (pred: (e: WebhookEvent) => boolean, timeoutMs: number): Promise<WebhookEvent> => {
    const seen = events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const notify = (e: WebhookEvent) => {
        if (!pred(e)) return;
        clearTimeout(timer);
        waiters.delete(notify);
        resolve(e);
      };
      const timer = setTimeout(() => {
        waiters.delete(notify);
        const got = events.map((e) => e.event).join(', ') || 'none';
        reject(new Error(`webhook not received within ${timeoutMs} ms (received: ${got})`));
      }, timeoutMs);
      waiters.add(notify);
    });
  };

  return {
    url: `http://127.0.0.1:${listenPort}/`,
    events,
    rejected,
    waitFor,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
