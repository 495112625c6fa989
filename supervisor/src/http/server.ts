// Starts the node's HTTP endpoints: health, Prometheus, debug and templates, each on its configured port (0 = off).
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Config } from '@egress/shared/config/types.ts';
import type { Logger } from '@egress/shared/logging.ts';
import type { NodeView } from '../service/node-view.ts';
import { healthHandler } from './health.ts';
import { PortInUseError, closeServer, listen } from './util.ts';

export type EndpointName = 'health' | 'prometheus' | 'debug' | 'template';

export interface HttpEndpoints {
  close(): Promise<void>;
  /** The ports actually listened on; absent when the endpoint is off. */
  ports: { health?: number; prometheus?: number; debug?: number; template?: number };
}

export interface HttpEndpointOptions {
  /** The directory the template server serves; default <repo>/templates/dist. */
  templatesDir?: string;
}

const LOCALHOST = '127.0.0.1';

const CONFIG_KEYS: Record<EndpointName, string> = {
  health: 'health_port',
  prometheus: 'prometheus_port',
  debug: 'debug_handler_port',
  template: 'template_port',
};

/** Starts every endpoint whose port is non-zero; a port in use fails the start naming its config key. */
export async function startHttpEndpoints(
  config: Config,
  view: NodeView,
  log: Logger,
  opts: HttpEndpointOptions = {},
): Promise<HttpEndpoints> {
  // Each endpoint's module loads only when its port is on: prom-client alone costs ~50 ms of a start.
  const endpoints: { name: EndpointName; port: number; host: string; handler: () => Promise<RequestListener> }[] = [
    // Health and metrics are read from other hosts (probes, Prometheus), as in the Go egress.
    { name: 'health', port: config.healthPort, host: config.httpBindAddress, handler: async () => healthHandler(view) },
    {
      name: 'prometheus',
      port: config.prometheusPort,
      host: config.httpBindAddress,
      handler: async () => {
        const { createMetricsRegistry, metricsHandler } = await import('./metrics.ts');
        return metricsHandler(createMetricsRegistry(view, { clusterId: config.clusterId }));
      },
    },
    {
      name: 'debug',
      port: config.debugHandlerPort,
      host: config.debugBindAddress || LOCALHOST,
      handler: async () => (await import('./debug.ts')).debugHandler(view, log),
    },
    {
      name: 'template',
      port: config.templatePort,
      host: LOCALHOST,
      handler: async () => {
        const { DEFAULT_TEMPLATES_DIR, templatesHandler } = await import('./templates.ts');
        return templatesHandler(log, opts.templatesDir ?? DEFAULT_TEMPLATES_DIR);
      },
    },
  ];

  const servers: Server[] = [];
  const ports: HttpEndpoints['ports'] = {};
  const close = async (): Promise<void> => {
    await Promise.all(servers.splice(0).map(closeServer));
  };

  try {
    for (const { name, port, host, handler } of endpoints) {
      if (!port) continue;
      const server = createServer(await handler());
      try {
        ports[name] = await listen(server, port, host, CONFIG_KEYS[name]);
      } catch (err) {
        const sharedWith = endpoints.find((e) => e.name !== name && e.port === port && ports[e.name] !== undefined);
        if (err instanceof PortInUseError && sharedWith) {
          throw new PortInUseError(err.key, err.port, `${err.message} (also ${CONFIG_KEYS[sharedWith.name]})`);
        }
        throw err;
      }
      servers.push(server);
      log.info(`${name} server listening`, { address: host, port: ports[name] });
    }
  } catch (err) {
    await close();
    throw err;
  }

  return { close, ports };
}
