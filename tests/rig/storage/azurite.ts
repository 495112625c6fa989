// Azurite (blob service only) on 127.0.0.1 as a child process; down()/up() keep its data directory.
// It checks shared-key signatures against the well-known development account below.
import { createRequire } from 'node:module';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { freePort } from '../ports.ts';
import { answersHttp, startRestartable, type RestartableService } from './common.ts';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** Azurite's documented development key (public, not a secret). */
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer extends RestartableService {
  port: number;
  /** http://127.0.0.1:<port>/devstoreaccount1: the blob endpoint for AzureConfig.endpoint */
  endpoint: string;
  createContainer(name: string): Promise<void>;
  client(): BlobServiceClient;
}

export async function startAzurite(opts: { containers?: string[] } = {}): Promise<AzuriteServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const bin = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
  const service = await startRestartable({
    name: 'azurite',
    command: process.execPath,
    args: (dataDir) => [
      bin, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dataDir,
      '--silent', '--skipApiVersionCheck', '--loose', '--disableTelemetry',
    ],
    ready: () => answersHttp(`${endpoint}?comp=list`),
    timeoutMs: 30_000,
  });
  const client = () => new BlobServiceClient(endpoint, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
  const createContainer = async (name: string) => {
    await client().getContainerClient(name).createIfNotExists();
  };
  for (const c of opts.containers ?? []) await createContainer(c);
  return Object.assign(service, { port, endpoint, createContainer, client });
}
