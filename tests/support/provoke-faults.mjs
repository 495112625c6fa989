// Test-only (tests/integration/faults.test.ts loads it into `egress serve` through NODE_OPTIONS):
// on SIGUSR2 the supervisor gets one unhandled rejection and one uncaught exception, what a missed
// error path would produce, so the suite can show that the node and its jobs outlive them.
// Handlers and other processes that inherit NODE_OPTIONS are left alone.
import process from 'node:process';
import { setTimeout } from 'node:timers';

if (process.argv[2] === 'serve') {
  process.on('SIGUSR2', () => {
    void Promise.reject(new Error('provoked unhandled rejection'));
    setTimeout(() => {
      throw new Error('provoked uncaught exception');
    }, 0);
  });
}
