// Where a spare handler keeps what it starts before its job (handler_pool.browser): the browser
// profile. Named after its pid, so the supervisor finds it when the spare dies without removing it.
// Its null sink is named the same way (pulse.ts).
import path from 'node:path';

const SPARE_DIR = /^spare-(\d+)$/;

export const spareScratch = (tmpDir: string, pid: number): string => path.join(tmpDir, `spare-${pid}`);

/** Whether a process of that pid exists (a spare whose scratch or sink is still in use). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of a spare's scratch directory name, or undefined for any other name. */
export function spareOfDir(name: string): number | undefined {
  const m = SPARE_DIR.exec(name);
  return m ? Number(m[1]) : undefined;
}
