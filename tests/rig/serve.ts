// Starts a local redis + livekit-server and describes it in a deployment file, so that the
// integration suite can run against it from another process (EGRESS_DEPLOYMENT=<file>).
// Usage: npx tsx tests/rig/serve.ts <deployment.yaml> [webhook-url]
// Runs until SIGINT/SIGTERM.
import { startLocalDeployment, writeDeploymentFile } from './deployment.ts';

const [file, webhookUrl] = process.argv.slice(2);
if (!file) {
  console.error('usage: tsx tests/rig/serve.ts <deployment.yaml> [webhook-url]');
  process.exit(2);
}

const deployment = await startLocalDeployment({ webhookUrl });
writeDeploymentFile(deployment, file);
console.log(`rig: livekit-server ${deployment.wsUrl} (log ${deployment.livekitLogPath}), redis ${deployment.redis.address}`);
console.log(`rig: wrote ${file}`);

// the rig's child processes do not keep the event loop alive by themselves
const keepAlive = setInterval(() => undefined, 1 << 30);
const shutdown = () => {
  clearInterval(keepAlive);
  void deployment.stop().then(() => process.exit(0));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
