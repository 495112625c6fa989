// The `egress` command tree and how it fails: every error is one `egress: …` line on stderr with
// exit code 1 (server/runtime) or 2 (usage/input), never a stack trace.
import { Command, CommanderError } from 'commander';
import { finalError } from './errors.ts';
import { groupAction } from './options.ts';
import { jobsCommand } from './jobs.ts';
import { manageCommands } from './manage.ts';
import { processIo, type CliIo } from './io.ts';
import { serveCommand } from './serve-command.ts';
import { startCommand } from './start.ts';

/** Every command of the tree, depth first. */
function* walk(cmd: Command): Generator<Command> {
  yield cmd;
  for (const sub of cmd.commands) yield* walk(sub);
}

/** Builds the `egress` program; `onServing` is called once `serve` has the node running. */
export function buildProgram(io: CliIo, onServing: () => void = () => {}): Command {
  const program = new Command('egress')
    .description('LiveKit Egress: records and exports LiveKit rooms and tracks')
    .addCommand(serveCommand(io, onServing))
    .addCommand(startCommand(io));
  for (const cmd of manageCommands(io)) program.addCommand(cmd);
  program.addCommand(jobsCommand(io));
  groupAction(program.usage('<command> [options]'), 'egress');

  // addCommand does not pass settings down: give every command the same error handling.
  for (const cmd of walk(program)) {
    cmd.exitOverride();
    cmd.showSuggestionAfterError(true);
    cmd.configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      // descriptions are one line each: wrap only where the terminal would anyway
      getOutHelpWidth: () => (io.stdout.isTTY && process.stdout.columns ? process.stdout.columns : 120),
      // errors are printed once, by run(), as `egress: …`
      outputError: () => {},
    });
  }
  return program;
}

export const SERVING = 'serving' as const;

/**
 * Runs the CLI on `argv` (process.argv layout). Resolves with the exit code, or SERVING when
 * `egress serve` is running (the process then lives on until the node stops).
 */
export async function run(argv: string[], io: CliIo = processIo()): Promise<number | typeof SERVING> {
  let serving = false;
  const program = buildProgram(io, () => (serving = true));
  try {
    await program.parseAsync(argv);
    return serving ? SERVING : 0;
  } catch (err) {
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')) return err.exitCode;
    const { line, exitCode } = finalError(err);
    io.stderr.write(`${line}\n`);
    return exitCode;
  }
}
