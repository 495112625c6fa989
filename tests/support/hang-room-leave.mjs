// Test-only (tests/integration/faults-pipeline.test.ts loads it into `egress serve` through
// NODE_OPTIONS, so every handler gets it): rtc-node's Room.disconnect never resolves, as it has been
// seen to in CI, so the suite can show that a stop still delivers the recording COMPLETE.
import process from 'node:process';

if (/[/\\]handler[/\\]src[/\\]main\.[tj]s$/.test(process.argv[1] ?? '')) {
  const { Room } = await import('@livekit/rtc-node');
  Room.prototype.disconnect = () => new Promise(() => undefined);
}
