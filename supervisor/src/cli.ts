#!/usr/bin/env node
// The one `egress` binary: `serve` runs a node; start, list, stop, update-stream, update-layout talk
// to livekit-server's Egress API; `jobs` talks to a node's debug port. See cli/program.ts.
import { run, SERVING } from './cli/program.ts';

// livekit-server-sdk logs unparsable error bodies with console.debug; the CLI's failures are one line.
console.debug = () => {};

const result = await run(process.argv);
if (result !== SERVING) {
  // Not process.exit(): stdout may still be draining into a pipe. Idle keep-alive sockets do not
  // hold the process; the timer is a backstop, unref'd so it never delays a clean exit.
  process.exitCode = result;
  setTimeout(() => process.exit(result), 2000).unref();
}
