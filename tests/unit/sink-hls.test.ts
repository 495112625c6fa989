// The HLS playlists and the stored names of segments and thumbnails, as tables; the playlists also
// pass the rig's strict check (which must reject a broken one).
import t from 'tap';
import { eventPlaylist, livePlaylist, type StoredSegment } from '../../handler/src/sink/hls-playlist.ts';
import { imageName, segmentName, stamp } from '../../handler/src/sink/output-names.ts';
import { checkPlaylist } from '../rig/hls-check.ts';

const T0 = Date.UTC(2026, 11, 2, 19, 5, 7, 42);
const segs = (n: number, d = 4): StoredSegment[] =>
  Array.from({ length: n }, (_, i) => ({ uri: `rec_${String(i).padStart(5, '0')}.ts`, durationS: i === n - 1 ? 2.5 : d, programDateTime: new Date(T0 + i * d * 1000) }));

t.test('stored names', async (t) => {
  t.equal(stamp(T0), '20261202190507042');
  t.equal(segmentName('rec', 'index', 7, T0), 'rec_00007.ts');
  t.equal(segmentName('sub/rec', 'timestamp', 7, T0), 'sub/rec_20261202190507042.ts');
  t.equal(imageName('thumb', 'index', 12, T0), 'thumb_00012.jpeg');
  t.equal(imageName('thumb', 'timestamp', 12, T0), 'thumb_20261202190507042.jpeg');
  t.equal(imageName('thumb', 'none_overwrite', 12, T0), 'thumb.jpeg');
});

t.test('EVENT playlist: every stored segment, ENDLIST only at the end', async (t) => {
  const live = eventPlaylist(segs(3), 4, false);
  t.match(live, /^#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n/);
  t.match(live, /#EXT-X-PLAYLIST-TYPE:EVENT/);
  t.match(live, /#EXT-X-PROGRAM-DATE-TIME:2026-12-02T19:05:07.042Z\n#EXTINF:4,\nrec_00000.ts/);
  const open = checkPlaylist(live, { ended: false });
  t.equal(open.type, 'EVENT');
  t.equal(open.segments.length, 3);
  t.equal(open.segments[2]?.duration, 2.5);
  const ended = checkPlaylist(eventPlaylist(segs(3), 4, true), { ended: true });
  t.equal(ended.endlist, true);
  t.equal(checkPlaylist(eventPlaylist([], 4, true), { ended: true }).segments.length, 0, 'a recording with no segment still closes its playlist');
});

t.test('live playlist: the last 5 segments, media sequence counting the dropped ones', async (t) => {
  const p = checkPlaylist(livePlaylist(segs(8), 4, false), { ended: false });
  t.equal(p.type, undefined, 'no PLAYLIST-TYPE');
  t.equal(p.mediaSequence, 3);
  t.same(p.segments.map((s) => s.uri), ['rec_00003.ts', 'rec_00004.ts', 'rec_00005.ts', 'rec_00006.ts', 'rec_00007.ts']);
  t.equal(checkPlaylist(livePlaylist(segs(2), 4, true), { ended: true }).mediaSequence, 0);
});

t.test('a segment longer than the target raises TARGETDURATION instead of breaking the playlist', async (t) => {
  const long = segs(2).map((s, i) => (i === 0 ? { ...s, durationS: 6.2 } : { ...s, programDateTime: new Date(T0 + 6200) }));
  t.equal(checkPlaylist(eventPlaylist(long, 4, true), { ended: true }).targetDuration, 6);
});

t.test('the strict check rejects what a player would trip on', async (t) => {
  const good = eventPlaylist(segs(3), 4, true);
  t.throws(() => checkPlaylist(good, { ended: false }), /ENDLIST before the end/);
  t.throws(() => checkPlaylist(good.replace('#EXT-X-TARGETDURATION:4', '#EXT-X-TARGETDURATION:2'), { ended: true }), /exceeds TARGETDURATION|less than or equal to the target duration/);
  t.throws(() => checkPlaylist(good.replace('19:05:11.042Z', '19:05:12.042Z'), { ended: true }), /PROGRAM-DATE-TIME gap/);
  t.throws(() => checkPlaylist(good.replace('#EXTINF:4,\nrec_00001.ts', '#EXT-X-DISCONTINUITY\n#EXTINF:4,\nrec_00001.ts'), { ended: true }), /discontinuity/);
});
