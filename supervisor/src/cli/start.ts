// `egress start <kind>`: start an egress through livekit-server's API, optionally waiting for it.
import { Command } from 'commander';
import { EgressStatus } from '@livekit/protocol';
import { resolveConnection } from './connection.ts';
import { CliError } from './errors.ts';
import { formatInfo, infoJson, statusName } from './format.ts';
import { println, type CliIo } from './io.ts';
import { addConnectionOptions, addJsonOption, collect, groupAction } from './options.ts';
import { loadStartRequest, REQUEST_TYPES, type StartFlags, type StartKind } from './requests.ts';
import { waitForEgress } from './wait.ts';

interface StartOptions extends StartFlags {
  url?: string;
  apiKey?: string;
  apiSecret?: string;
  json?: boolean;
  wait?: boolean;
}

const DESCRIPTIONS: Record<StartKind, string> = {
  'room-composite': 'record or stream a whole room, composited by a web layout',
  web: 'record or stream any web page',
  participant: "record or stream one participant's audio and video",
  'track-composite': 'record or stream one audio and/or one video track, muxed together',
  track: 'export one track as is (no transcoding), to a file or a WebSocket',
};

function addEncodedOutputOptions(cmd: Command): Command {
  return cmd
    .option('--file <path>', 'record to a file (placeholders such as {room_name}, {time} allowed)')
    .option('--stream <url>', 'stream to an RTMP(S)/SRT URL (repeatable)', collect)
    .option('--segments <prefix>', 'record HLS segments with this filename prefix')
    .option('--preset <name>', 'encoding preset, e.g. H264_1080P_30');
}

export function startCommand(io: CliIo): Command {
  const start = new Command('start').description('start an egress through livekit-server').usage('<kind> [options]');

  const kind = (name: StartKind, build: (cmd: Command) => Command) => {
    const cmd = new Command(name).description(DESCRIPTIONS[name]);
    build(cmd);
    cmd.option('--request <file>', `the whole request as protobuf JSON of a ${REQUEST_TYPES[name].typeName.replace('livekit.', '')} (instead of the flags above)`);
    cmd.option('--wait', 'show progress until the egress ends; Ctrl-C stops it (exit 0 when COMPLETE)');
    addJsonOption(cmd);
    addConnectionOptions(cmd);
    cmd.action((opts: StartOptions) => runStart(name, opts, io));
    start.addCommand(cmd);
  };

  kind('room-composite', (c) =>
    addEncodedOutputOptions(
      c
        .option('--room <name>', 'room to record')
        .option('--layout <layout>', 'layout: grid, speaker, single-speaker …')
        .option('--audio-only', 'record audio only')
        .option('--video-only', 'record video only'),
    ),
  );
  kind('web', (c) =>
    addEncodedOutputOptions(
      c.option('--url-to-record <url>', 'web page to record').option('--audio-only', 'record audio only').option('--video-only', 'record video only'),
    ),
  );
  kind('participant', (c) =>
    addEncodedOutputOptions(
      c
        .option('--room <name>', 'room of the participant')
        .option('--identity <identity>', 'identity of the participant')
        .option('--screen-share', 'record the screen share instead of camera and microphone'),
    ),
  );
  kind('track-composite', (c) =>
    addEncodedOutputOptions(
      c
        .option('--room <name>', 'room of the tracks')
        .option('--audio-track <id>', 'audio track id')
        .option('--video-track <id>', 'video track id'),
    ),
  );
  kind('track', (c) =>
    c
      .option('--room <name>', 'room of the track')
      .option('--track <id>', 'track id (TR_…)')
      .option('--file <path>', 'file to write (placeholders such as {track_id}, {track_type} allowed)')
      .option('--websocket <url>', 'WebSocket URL to send the track to'),
  );

  return groupAction(start, 'egress start');
}

async function runStart(kind: StartKind, opts: StartOptions, io: CliIo): Promise<void> {
  // Input problems first: a bad request file fails before anything reaches the server.
  const request = loadStartRequest(kind, opts, io.readFile);
  // livekit-server-sdk (and jose) load only now: `--help` stays fast.
  const { egressApi } = await import('./api.ts');
  const api = egressApi(resolveConnection(opts, io.env));
  const info = await api.start(request, opts.request ?? 'request');
  println(io.stdout, opts.json ? infoJson(info) : formatInfo(info));
  if (!opts.wait) return;

  // With --json, stdout carries only JSON: the progress goes to stderr.
  const out = opts.json ? io.stderr : io.stdout;
  if (!opts.json) println(out, '');
  const final = await waitForEgress(api, info.egressId, { out });
  println(io.stdout, opts.json ? infoJson(final) : `\n${formatInfo(final)}`);
  if (final.status !== EgressStatus.EGRESS_COMPLETE) {
    throw new CliError(`${final.egressId} ended ${statusName(final.status)}: ${final.error || 'no error given'}`);
  }
}
