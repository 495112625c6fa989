// `egress jobs list|inspect|stop|kill`: the jobs of one egress node, through its debug port.
import { Command } from 'commander';
import { EgressInfo, EgressStatus } from '@livekit/protocol';
import { DebugClient, resolveDebugUrl, type DebugUrlFlags, type JobDetail, type JobSummary } from './debug-client.ts';
import { formatBytes, formatInfo, formatTable } from './format.ts';
import { println, type CliIo } from './io.ts';
import { addJsonOption, groupAction } from './options.ts';

interface JobsOptions extends DebugUrlFlags {
  json?: boolean;
}

const status = (s: string | number): string => (typeof s === 'number' ? (EgressStatus[s] ?? String(s)) : s);

/** ISO strings as they are; numbers as Unix s/ms/ns, whichever scale fits. */
function time(t: string | number | null | undefined): string {
  if (t === null || t === undefined || t === '' || t === 0) return '-';
  if (typeof t === 'string') return t.replace(/\.\d{3}Z$/, 'Z');
  const ms = t > 1e15 ? t / 1e6 : t > 1e11 ? t : t * 1000;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const cpu = (c: number | null | undefined): string => (typeof c === 'number' ? c.toFixed(2) : '-');
const memory = (m: number | null | undefined): string => (typeof m === 'number' ? formatBytes(m) : '-');

export function jobsTable(jobs: JobSummary[]): string {
  const rows = [['EGRESS ID', 'TYPE', 'STATUS', 'STARTED', 'PIDS', 'CPU', 'MEMORY']];
  for (const j of jobs) {
    rows.push([j.egressId, j.requestType, status(j.status), time(j.startedAt), (j.pids ?? []).join(',') || '-', cpu(j.cpu), memory(j.memoryBytes)]);
  }
  return formatTable(rows);
}

export function jobDetail(job: JobDetail): string {
  const lines = [
    formatTable([
      ['egress_id', job.egressId],
      ['type', job.requestType],
      ['status', status(job.status)],
      ['cpu', cpu(job.cpu)],
      ['memory', memory(job.memoryBytes)],
    ]),
  ];
  const procs = job.processes ?? [];
  if (procs.length) {
    lines.push('', formatTable([['PID', 'PGID', 'NAME', 'COMMAND'], ...procs.map((p) => [String(p.pid), String(p.pgid), p.name, p.commandLine])]));
  }
  const commandLines = job.commandLines ?? [];
  if (commandLines.length) lines.push('', 'pipelines:', ...commandLines.map((c) => `  ${c}`));
  return lines.join('\n');
}

/** The `info` of a stop answer as the usual summary; raw JSON when it is not an EgressInfo. */
function stoppedInfo(info: unknown): string {
  try {
    return formatInfo(EgressInfo.fromJson(info as never, { ignoreUnknownFields: true }));
  } catch {
    return JSON.stringify(info, null, 2);
  }
}

export function jobsCommand(io: CliIo): Command {
  const jobs = new Command('jobs').description("inspect and control one egress node's jobs through its debug port").usage('<command> [options]');
  const client = (opts: JobsOptions) => new DebugClient(resolveDebugUrl(opts, io.env));
  const json = (v: unknown) => println(io.stdout, JSON.stringify(v, null, 2));

  const sub = (cmd: Command) =>
    jobs.addCommand(
      addJsonOption(cmd)
        .option('--debug-url <url>', "the node's debug server (default: http://127.0.0.1:<port>)")
        .option('--port <port>', "the node's debug_handler_port (default: $EGRESS_DEBUG_PORT)"),
    );

  sub(
    new Command('list').description("list the node's running jobs with their processes and usage").action(async (opts: JobsOptions) => {
      const list = await client(opts).list();
      if (opts.json) json(list);
      else println(io.stdout, list.length ? jobsTable(list) : 'no jobs');
    }),
  );
  sub(
    new Command('inspect')
      .description("show one job: request, processes, pipelines, usage")
      .argument('<egress-id>')
      .action(async (egressId: string, opts: JobsOptions) => {
        const job = await client(opts).inspect(egressId);
        if (opts.json) json(job);
        else println(io.stdout, jobDetail(job));
      }),
  );
  sub(
    new Command('stop')
      .description('stop a job gracefully on the node (outputs finalized), bypassing livekit-server')
      .argument('<egress-id>')
      .action(async (egressId: string, opts: JobsOptions) => {
        const answer = await client(opts).stop(egressId);
        if (opts.json) json(answer);
        else println(io.stdout, stoppedInfo(answer.info));
      }),
  );
  sub(
    new Command('kill')
      .description('kill a job and every process it started (SIGKILL); the egress ends FAILED')
      .argument('<egress-id>')
      .action(async (egressId: string, opts: JobsOptions) => {
        const answer = await client(opts).kill(egressId);
        if (opts.json) json(answer);
        else println(io.stdout, `killed ${typeof answer.killed === 'string' ? answer.killed : egressId}`);
      }),
  );
  return groupAction(jobs, 'egress jobs');
}
