// The project's own psrpc client, pointed at a test deployment's Redis: for requests livekit-server
// would send (a retried StartEgress, ListActiveEgress), without going through livekit-server.
import { createLogger } from '../../shared/src/logging.ts';
import { Bus } from '../../shared/src/psrpc/bus.ts';
import { RpcClient, type Selection } from '../../shared/src/psrpc/client.ts';
import type { Deployment } from '../rig/deployment.ts';

/** livekit-server's StartEgress selection options (protocol rpc/egress_client.go). */
export const START_SELECTION: Selection = { maximumAffinity: 1, affinityTimeoutMs: 1000, shortCircuitTimeoutMs: 500 };

export async function egressInternalClient(d: Deployment): Promise<{ rpc: RpcClient; close(): Promise<void> }> {
  const log = createLogger({ level: 'warn', json: false });
  const bus = new Bus({ ...d.redis, useTls: false, sentinelMasterName: '', sentinelAddresses: [], clusterAddresses: [] }, log);
  await bus.connect();
  const rpc = new RpcClient(bus, 'EgressInternal', log);
  return {
    rpc,
    close: async () => {
      await rpc.close();
      await bus.close();
    },
  };
}
