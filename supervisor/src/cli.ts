#!/usr/bin/env node
// The one `egress` binary.
import { Command } from 'commander';
import { loadConfig } from './config/load.ts';
import { serve } from './serve.ts';

const program = new Command('egress').description('LiveKit Egress: records and exports LiveKit rooms and tracks');

program
  .command('serve')
  .description('run an egress node: take jobs from livekit-server over Redis')
  .option('-c, --config <file>', 'YAML config file (or EGRESS_CONFIG_FILE / EGRESS_CONFIG_BODY)')
  .option('--config-body <yaml>', 'YAML config text')
  .action(async (opts: { config?: string; configBody?: string }) => {
    const { config, warnings } = loadConfig({ file: opts.config, body: opts.configBody, env: process.env });
    await serve(config, warnings);
  });

program.parseAsync().catch((err: Error) => {
  console.error(`egress: ${err.message}`);
  process.exit(1);
});
