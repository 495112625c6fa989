// Where a suite's livekit-server and Redis come from: an existing deployment (the file named by
// EGRESS_TEST_DEPLOYMENT, see tests/run-integration.ts), or a fresh local one per suite.
import '../rig/quiet-rtc.ts';
import type { Test } from 'tap';
import { loadDeployment, startLocalDeployment, type Deployment } from '../rig/deployment.ts';
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
