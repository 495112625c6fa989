// What the CLI's commands read and write, gathered so the commands can run against fakes.
import { readFileSync } from 'node:fs';

export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  readFile(path: string): string;
}

export const processIo = (): CliIo => ({
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  readFile: (path) => readFileSync(path, 'utf8'),
});

/** Writes `text` and a newline. */
export const println = (stream: CliIo['stdout'], text: string): void => {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
};
