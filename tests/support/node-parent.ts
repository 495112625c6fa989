// A process that starts an egress node the way the suites do (startEgressNode), prints the node's
// pid, and stays until it is killed: what a suite dying without stopping its node looks like.
// Usage: node --import tsx tests/support/node-parent.ts '<deployment JSON>'
import type { Deployment } from '../rig/deployment.ts';
import { startEgressNode } from './egress-node.ts';

const node = await startEgressNode(JSON.parse(process.argv[2]!) as Deployment);
console.log(`node pid ${node.process.pid}`);
setInterval(() => undefined, 1 << 30);
