// `egress list|stop|update-stream|update-layout`: manage egresses through livekit-server's API.
import { Command } from 'commander';
import type { EgressInfo } from '@livekit/protocol';
import type { EgressApi } from './api.ts';
import { resolveConnection, type ConnectionFlags } from './connection.ts';
import { UsageError } from './errors.ts';
import { egressTable, formatInfo, infoJson } from './format.ts';
import { println, type CliIo } from './io.ts';
import { addConnectionOptions, addJsonOption, collect } from './options.ts';

interface Common extends ConnectionFlags {
  json?: boolean;
}

export function manageCommands(io: CliIo): Command[] {
  // livekit-server-sdk (and jose) load only when a command calls the server: `--help` stays fast.
  const api = async (opts: Common): Promise<EgressApi> => (await import('./api.ts')).egressApi(resolveConnection(opts, io.env));
  const show = (opts: Common, info: EgressInfo) => println(io.stdout, opts.json ? infoJson(info) : formatInfo(info));
  const withCommon = (cmd: Command) => addConnectionOptions(addJsonOption(cmd));

  const list = withCommon(
    new Command('list')
      .description('list egresses known to livekit-server')
      .option('--room <name>', 'only egresses of this room')
      .option('--active', 'only egresses that have not ended'),
  ).action(async (opts: Common & { room?: string; active?: boolean }) => {
    const infos = await (await api(opts)).list({ roomName: opts.room, active: opts.active });
    if (opts.json) println(io.stdout, infoJson(infos));
    else println(io.stdout, infos.length ? egressTable(infos) : 'no egresses');
  });

  const stop = withCommon(new Command('stop').description('stop an egress; its outputs are finalized').argument('<egress-id>')).action(
    async (egressId: string, opts: Common) => show(opts, await (await api(opts)).stop(egressId)),
  );

  const updateStream = withCommon(
    new Command('update-stream')
      .description("add or remove stream URLs of a streaming egress")
      .argument('<egress-id>')
      .option('--add <url>', 'start streaming to this URL (repeatable)', collect)
      .option('--remove <url>', 'stop streaming to this URL (repeatable)', collect),
  ).action(async (egressId: string, opts: Common & { add?: string[]; remove?: string[] }) => {
    if (!opts.add?.length && !opts.remove?.length) throw new UsageError('update-stream: give --add <url> and/or --remove <url>');
    show(opts, await (await api(opts)).updateStream(egressId, opts.add ?? [], opts.remove ?? []));
  });

  const updateLayout = withCommon(
    new Command('update-layout').description('change the layout of a room composite egress').argument('<egress-id>').argument('<layout>'),
  ).action(async (egressId: string, layout: string, opts: Common) => show(opts, await (await api(opts)).updateLayout(egressId, layout)));

  return [list, stop, updateStream, updateLayout];
}
