// The default template's pure layout logic (templates/src/layout.ts): layout names, the track on the
// stage, and tile placement. tests/integration/template.test.ts checks the same on screenshots.
import t from 'tap';
import { CAROUSEL_TILES, GAP, gridColumns, parseLayout, pickTop, placeTiles, type Candidate } from '../../templates/src/layout.ts';

t.test('parseLayout: prefixes and the -light suffix only', async (t) => {
  const cases: [string, ReturnType<typeof parseLayout>][] = [
    ['', { kind: 'grid', light: false }],
    ['grid', { kind: 'grid', light: false }],
    ['grid-light', { kind: 'grid', light: true }],
    ['grid-dark', { kind: 'grid', light: false }],
    ['speaker', { kind: 'speaker', light: false }],
    ['speaker-light', { kind: 'speaker', light: true }],
    ['speaker-dark', { kind: 'speaker', light: false }],
    ['speaker-anything', { kind: 'speaker', light: false }],
    ['single-speaker', { kind: 'single-speaker', light: false }],
    ['single-speaker-light', { kind: 'single-speaker', light: true }],
    ['single-speaker-dark', { kind: 'single-speaker', light: false }],
    ['mosaic', { kind: 'grid', light: false }],
    ['mosaic-light', { kind: 'grid', light: true }],
  ];
  for (const [name, want] of cases) t.same(parseLayout(name), want, JSON.stringify(name));
});

t.test('gridColumns: the largest 16:9 picture', async (t) => {
  const at720 = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => gridColumns(n, 1280, 720));
  t.same(at720, [1, 2, 2, 2, 3, 3, 3, 3, 3], '1280x720');
  t.equal(gridColumns(2, 720, 1280), 1, 'portrait: stacked');
});

const keys = (n: number) => Array.from({ length: n }, (_, i) => `p${i}`);

t.test('placeTiles', async (t) => {
  t.same(placeTiles('grid', [], undefined, false, 1280, 720), [], 'nothing to place');
  const half = (1280 - GAP) / 2;
  t.same(placeTiles('grid', keys(2), 'p1', false, 1280, 720), [
    { key: 'p0', x: 0, y: 0, w: half, h: 720 },
    { key: 'p1', x: half + GAP, y: 0, w: half, h: 720 },
  ], 'grid of 2: side by side, in join order whatever the top');

  const three = placeTiles('grid', keys(3), undefined, false, 1280, 720);
  t.equal(three.length, 3);
  t.equal(three[2]!.x + three[2]!.w / 2, 640, 'a short last row is centred');

  t.same(placeTiles('speaker', keys(1), 'p0', false, 1280, 720), [{ key: 'p0', x: 0, y: 0, w: 1280, h: 720 }], 'speaker of 1: full frame');
  const speaker = placeTiles('speaker', keys(6), 'p4', false, 1280, 720);
  t.equal(speaker.length, 1 + CAROUSEL_TILES, 'focus + a carousel of 3');
  t.same(speaker[0], { key: 'p4', x: 0, y: 0, w: 1020, h: 720 }, 'the top track on the focus');
  t.same(speaker.slice(1).map((p) => p.key), ['p0', 'p1', 'p2'], 'the carousel in join order');
  t.ok(speaker.slice(1).every((p) => p.x === 1024 && p.w === 256 && p.h === 144), 'carousel tiles 256x144 on the right');

  t.same(placeTiles('single-speaker', keys(3), 'p2', false, 1280, 720), [{ key: 'p2', x: 0, y: 0, w: 1280, h: 720 }], 'single-speaker: the top only');
  t.same(placeTiles('single-speaker', keys(3), 'gone', false, 1280, 720)[0]?.key, 'p0', 'a top that left: the first');

  const shared = placeTiles('grid', keys(3), 'p1', true, 1280, 720);
  t.same(shared.map((p) => p.key), ['p1', 'p0', 'p2'], 'a grid with a screen share is a speaker layout');
  t.equal(shared[0]!.w, 1020);

  const portrait = placeTiles('speaker', keys(3), 'p0', false, 720, 1280);
  t.ok(portrait.slice(1).every((p) => p.y === 1280 - 256), 'portrait: the carousel is a row below');
});

const cand = (key: string, c: Partial<Candidate> = {}): Candidate => ({ key, screenShare: false, speaking: false, audioLevel: 0, lastSpokeAt: 0, ...c });

t.test('pickTop', async (t) => {
  t.equal(pickTop([]), undefined, 'nobody');
  t.equal(pickTop([cand('a'), cand('b')]), 'a', 'silence: the first');
  t.equal(pickTop([cand('a', { lastSpokeAt: 1 }), cand('b', { lastSpokeAt: 2 })]), 'b', 'the latest heard');
  t.equal(pickTop([cand('a', { speaking: true, audioLevel: 0.2 }), cand('b', { speaking: true, audioLevel: 0.5 })]), 'b', 'the loudest');
  t.equal(pickTop([cand('a', { speaking: true, audioLevel: 0.2 }), cand('b', { speaking: true, audioLevel: 0.5 })], 'a'), 'a', 'the previous top keeps the stage while it speaks');
  t.equal(pickTop([cand('a'), cand('b')], 'b'), 'b', 'and while nobody does');
  t.equal(pickTop([cand('a'), cand('b', { speaking: true })], 'a'), 'b', 'a new speaker takes it from a silent top');
  t.equal(pickTop([cand('a', { speaking: true, audioLevel: 1 }), cand('s1', { screenShare: true }), cand('s2', { screenShare: true })], 'a'), 's2', 'the newest screen share wins');
});
