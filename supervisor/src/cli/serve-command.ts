// `egress serve`: run a node. The node's modules (psrpc, Redis, HTTP servers, metrics) load only
// here, so the client verbs start fast and never depend on them.
import { Command } from 'commander';
import type { CliIo } from './io.ts';

export function serveCommand(io: CliIo, onServing: () => void): Command {
  return new Command('serve')
    .description('run an egress node: take jobs from livekit-server over Redis')
    .option('-c, --config <file>', 'YAML config file (or EGRESS_CONFIG_FILE / EGRESS_CONFIG_BODY)')
    .option('--config-body <yaml>', 'YAML config text')
    .action(async (opts: { config?: string; configBody?: string }) => {
      const { loadConfig } = await import('../config/load.ts');
      const { serve } = await import('../serve.ts');
      const { config, warnings } = loadConfig({ file: opts.config, body: opts.configBody, env: io.env });
      await serve(config, warnings);
      onServing();
    });
}
