// Options shared by several commands, and the one-line group commands (`start`, `jobs`).
import type { Command } from 'commander';
import { UsageError } from './errors.ts';

export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'livekit-server URL, ws(s):// or http(s):// (default: $LIVEKIT_URL or $LIVEKIT_WS_URL)')
    .option('--api-key <key>', 'API key (default: $LIVEKIT_API_KEY)')
    .option('--api-secret <secret>', 'API secret (default: $LIVEKIT_API_SECRET)');
}

export const addJsonOption = (cmd: Command): Command => cmd.option('--json', 'print protobuf JSON instead of a summary');

/**
 * A command that only groups subcommands: run without one (or with an unknown one) it fails with
 * one line naming the choices, instead of commander's help-on-stderr.
 */
export function groupAction(cmd: Command, path: string): Command {
  return cmd.allowExcessArguments().action(() => {
    const verb = cmd.args[0];
    const choices = cmd.commands.map((c) => c.name()).join(', ');
    const prefix = path === 'egress' ? '' : `${path.replace(/^egress /, '')}: `;
    if (verb === undefined) throw new UsageError(`${prefix}missing command: one of ${choices} (see ${path} --help)`);
    throw new UsageError(`${prefix}unknown command "${verb}": one of ${choices}`);
  });
}
