// JobMedia's bookkeeping that outputs depend on: a track muted before an output was added (the source
// subscribes before the outputs start) is announced to that output when it is added.
import t from 'tap';
import { JobMedia } from '../../handler/src/media/job-media.ts';

t.test('an output added after a track was muted hears of it; one added after the unmute does not', async (t) => {
  const media = new JobMedia({ audio: true, onStart: () => undefined });
  media.trackAdded({ trackId: 'TR_a', kind: 'audio', source: 'microphone', mimeType: 'audio/opus', publisherIdentity: 'p', width: 0, height: 0 }, { kind: 'audio', channel: 'both' });
  media.trackMuted('TR_a', true);
  const first: [string, boolean][] = [];
  media.addConsumer({ muted: (id, m) => first.push([id, m]) });
  t.same(first, [['TR_a', true]], 'told at once');
  media.trackMuted('TR_a', false);
  t.same(first, [['TR_a', true], ['TR_a', false]], 'and of the unmute');
  const second: [string, boolean][] = [];
  media.addConsumer({ muted: (id, m) => second.push([id, m]) });
  t.same(second, [], 'nothing muted any more');
  media.end();
});
