// `egress serve`: connect to Redis, serve psrpc, and handle signals.
import type { Config } from '@egress/shared/config/types.ts';
import { createLogger } from '@egress/shared/logging.ts';
import { Bus } from '@egress/shared/psrpc/bus.ts';
import { startHttpEndpoints } from './http/server.ts';
import { installLastResort } from './process-faults.ts';
import { EgressService } from './service/egress-service.ts';

export async function serve(config: Config, warnings: string[]): Promise<void> {
  const log = createLogger({ level: config.logging.level, json: config.logging.json });
  installLastResort(log);
  for (const w of warnings) log.warn(w);

  const bus = new Bus(config.redis, log);
  await bus.connect();
  const service = new EgressService(bus, config, log);
  // Endpoints first: a node whose ports cannot open must fail before it claims any job.
  const http = await startHttpEndpoints(config, service, log).catch(async (err: unknown) => {
    await bus.close();
    throw err;
  });
  await service.start();

  let signals = 0;
  const shutdown = async (how: 'drain' | 'stop') => {
    if (++signals > 1) {
      // Nothing left to lose: the first signal's shutdown is closing connections; let it finish.
      if (service.jobs().length === 0) return log.info('second signal: no job is left, the shutdown goes on');
      log.warn('second signal: killing every job');
      service.killAll('server is shutting down');
      process.exit(1);
    }
    log.info(how === 'drain' ? 'draining: no new jobs, running jobs finish' : 'stopping every job');
    if (how === 'drain') await service.drain();
    else await service.stopAll('Process killed');
    await http.close();
    await bus.close();
    log.info('egress node stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('drain'));
  process.on('SIGINT', () => void shutdown('stop'));
  // Started by a Node parent over an IPC channel (a test rig, a process manager): when the parent
  // dies, the node stops with it rather than serve on, unseen, and take jobs meant for others.
  if (process.channel) {
    process.channel.unref();
    process.on('disconnect', () => {
      log.warn('the parent process is gone');
      void shutdown('stop');
    });
  }
}
