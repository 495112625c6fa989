// `npm run demo`: a track egress on this machine, end to end. Starts Redis, livekit-server, an egress
// node and a publisher, records the publisher's audio for a few seconds, and shows the result.
import './rig/quiet-rtc.ts';
import path from 'node:path';
import { DirectFileOutput, EgressStatus } from '@livekit/protocol';
import { EgressClient } from 'livekit-server-sdk';
import { startLocalDeployment } from './rig/deployment.ts';
import { probe } from './rig/probe.ts';
import { disposeRtc, startPublisher } from './rig/publisher.ts';
import { startEgressNode } from './support/egress-node.ts';
import { waitFor } from './support/wait.ts';

const RECORD_SECONDS = 5;
const step = (msg: string) => console.log(`demo: ${msg}`);

step('starting redis-server and livekit-server on 127.0.0.1');
const d = await startLocalDeployment();
const node = await startEgressNode(d, { local_output_dir: path.resolve('demo-output') });
step(`egress node running (log: ${node.logPath})`);
try {
  const room = 'demo-room';
  const pub = await startPublisher({ wsUrl: d.wsUrl, apiKey: d.apiKey, apiSecret: d.apiSecret, room, identity: 'demo-publisher', audio: true, video: false });
  step(`publisher joined ${room} with an audio track ${pub.audioTrackSid}`);

  const client = new EgressClient(d.httpUrl, d.apiKey, d.apiSecret);
  const started = await client.startTrackEgress(room, new DirectFileOutput({ filepath: 'demo/{room_name}-{track_id}' }), pub.audioTrackSid!);
  step(`track egress ${started.egressId} started (${EgressStatus[started.status]})`);
  await waitFor('ACTIVE', async () => ((await client.listEgress({ egressId: started.egressId }))[0]?.status === EgressStatus.EGRESS_ACTIVE ? true : undefined));
  step(`recording for ${RECORD_SECONDS} s…`);
  await new Promise((r) => setTimeout(r, RECORD_SECONDS * 1000));
  await client.stopEgress(started.egressId);
  const info = await waitFor('the end', async () => {
    const i = (await client.listEgress({ egressId: started.egressId }))[0];
    return i && i.status >= EgressStatus.EGRESS_COMPLETE ? i : undefined;
  });
  await pub.stop();
  step(`egress ended ${EgressStatus[info.status]}${info.error ? `: ${info.error}` : ''}`);
  const file = info.fileResults[0];
  if (!file) throw new Error('no file result');
  const p = await probe(file.location);
  step(`file: ${file.location}`);
  step(`ffprobe: ${p.formatName}, ${p.duration.toFixed(2)} s, ${p.size} bytes, ` + p.streams.map((s) => `${s.codecType} ${s.codecName}${s.sampleRate ? ` ${s.sampleRate} Hz` : ''}${s.channels ? ` ${s.channels} ch` : ''}`).join(', '));
} finally {
  await node.stop();
  await d.stop();
  await disposeRtc();
}
