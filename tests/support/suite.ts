// Where a suite's livekit-server and Redis come from: an existing deployment (the file named by
// EGRESS_TEST_DEPLOYMENT, see tests/run-integration.ts), or a fresh local one per suite.
import '../rig/quiet-rtc.ts';
import type { Test } from 'tap';
import type { EgressInfo } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { loadDeployment, startLocalDeployment, type Deployment, type DeploymentFlags } from '../rig/deployment.ts';
import { disposeRtc } from '../rig/publisher.ts';
import { startEgressNode, type EgressNode } from './egress-node.ts';
import { DEFAULT_API_KEY, DEFAULT_API_SECRET } from '../rig/livekit.ts';
import { startWebhookReceiver, type WebhookSink } from '../rig/webhooks.ts';

/**
 * An existing deployment posts its webhooks where it was configured to; EGRESS_TEST_WEBHOOK_URL names
 * that loopback address so one suite can listen there. Without it, webhook checks are left out.
 */
export const WEBHOOK_URL_ENV = 'EGRESS_TEST_WEBHOOK_URL';

export interface Suite {
  deployment: Deployment;
  webhooks?: WebhookSink;
}

export async function suiteDeployment(t: Test, opts: { needsWebhooks: boolean }): Promise<Suite> {
  const existing = loadDeployment();
  if (existing) {
    const url = process.env[WEBHOOK_URL_ENV];
    if (!opts.needsWebhooks || !url) {
      if (opts.needsWebhooks) t.comment(`webhook checks left out: ${WEBHOOK_URL_ENV} is not set for this deployment`);
      return { deployment: existing };
    }
    const webhooks = await startWebhookReceiver(existing.apiKey, existing.apiSecret, Number(new URL(url).port));
    t.teardown(() => webhooks.stop());
    return { deployment: existing, webhooks };
  }
  // The receiver's address goes into livekit-server's config, so it starts first, with the rig's keys.
  const webhooks = opts.needsWebhooks ? await startWebhookReceiver(DEFAULT_API_KEY, DEFAULT_API_SECRET) : undefined;
  const local = await startLocalDeployment({ webhookUrl: webhooks?.url });
  t.teardown(async () => {
    await webhooks?.stop();
    await local.stop();
  });
  return { deployment: local, webhooks };
}

export interface EgressSuite extends Suite {
  node: EgressNode;
  client: EgressClient;
  getInfo(egressId: string): Promise<EgressInfo | undefined>;
}

/**
 * What most media suites start with: the deployment, and an egress node with a client, stopped (with
 * rtc-node) when the suite ends. Undefined, with a passing line that says so, when the deployment's
 * flags filter out `what`.
 */
export async function egressSuite(
  t: Test,
  opts: { what: string; filteredBy: (keyof DeploymentFlags)[]; needsWebhooks?: boolean; node?: Record<string, unknown> },
): Promise<EgressSuite | undefined> {
  const suite = await suiteDeployment(t, { needsWebhooks: opts.needsWebhooks ?? false });
  const d = suite.deployment;
  if (opts.filteredBy.some((f) => d.flags[f])) {
    t.pass(`${opts.what} filtered out by the deployment flags`);
    return undefined;
  }
  const node = await startEgressNode(d, opts.node);
  t.teardown(async () => {
    await node.stop();
    await disposeRtc();
  });
  const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
  return { ...suite, node, client, getInfo: async (egressId) => (await client.listEgress({ egressId }))[0] };
}
