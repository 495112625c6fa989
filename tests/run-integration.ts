// `npm run test:integration [-- path/to/deployment.yaml]`: runs the integration suites, each against
// its own redis-server and livekit-server, or all against an existing deployment described by the file.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const file = process.argv[2];
const env = { ...process.env };
if (file) {
  const abs = path.resolve(file);
  if (!existsSync(abs)) {
    console.error(`test:integration: deployment file not found: ${abs}`);
    process.exit(2);
  }
  env.EGRESS_TEST_DEPLOYMENT = abs;
  console.log(`test:integration: using the deployment described in ${abs}`);
}
// Suites sharing one deployment run one at a time: each starts an egress node, and two nodes on one
// Redis would take each other's jobs.
const jobs = file ? ['--jobs=1'] : [];
const tap = spawnSync('npx', ['tap', ...jobs, 'tests/integration'], { stdio: 'inherit', env });
process.exit(tap.status ?? 1);
