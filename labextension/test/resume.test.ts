import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  frameNumber,
  parseServerFrame,
  ServerFrame,
  serverFrameOf
} from '../src/protocol';
import { ResumeTracker } from '../src/resume';

/** A server frame as it comes off the socket: its parsed form and its number. */
function wire(json: Record<string, unknown>): [ServerFrame, number | null] {
  const frame = serverFrameOf(json);
  assert.ok(frame, `not a valid frame: ${JSON.stringify(json)}`);
  return [frame, frameNumber(json)];
}

const chunk = (id: string, n: number, seq: number, text: string) =>
  wire({ type: 'chunk', id, n, seq, text });

test('frames of a turn pass once each; a repeat of a seen n is dropped', () => {
  const tracker = new ResumeTracker();
  tracker.begin('t');
  const shown: string[] = [];
  const deliver = ([frame, n]: [ServerFrame, number | null]) => {
    if (tracker.accept(frame, n) && frame.type === 'chunk') {
      shown.push(frame.text);
    }
  };
  deliver(wire({ type: 'route', id: 't', n: 1, engine: 'simple' }));
  deliver(chunk('t', 2, 0, 'Hel'));
  deliver(chunk('t', 3, 1, 'lo'));
  // The socket drops; the resume after 2 replays 3 (which had arrived) and goes on.
  assert.deepEqual(tracker.resumeFrames(), [
    { type: 'resume', v: 1, id: 't', after: 3 }
  ]);
  deliver(chunk('t', 2, 0, 'Hel'));
  deliver(chunk('t', 3, 1, 'lo'));
  deliver(chunk('t', 4, 2, ' world'));
  assert.deepEqual(shown, ['Hel', 'lo', ' world']);
  assert.equal(tracker.lastSeen('t'), 4);
});

test('a turn sent but not yet answered resumes from 0', () => {
  const tracker = new ResumeTracker();
  assert.equal(tracker.inFlight, false);
  tracker.begin('a');
  tracker.begin('b');
  tracker.accept(...chunk('b', 1, 0, 'x'));
  assert.equal(tracker.inFlight, true);
  assert.deepEqual(
    tracker.resumeFrames().map(f => [f.id, f.after]),
    [
      ['a', 0],
      ['b', 1]
    ]
  );
  // begin() of a tracked id keeps what was seen.
  tracker.begin('b');
  assert.equal(tracker.lastSeen('b'), 1);
});

test('done and error end a turn, so nothing is resumed after them', () => {
  const tracker = new ResumeTracker();
  tracker.begin('d');
  tracker.begin('e');
  assert.ok(
    tracker.accept(
      ...wire({
        type: 'done',
        id: 'd',
        n: 1,
        usage: {},
        finish_reason: 'stop'
      })
    )
  );
  assert.ok(
    tracker.accept(
      ...wire({
        type: 'error',
        id: 'e',
        code: 'resume_unavailable',
        message: 'gone'
      })
    )
  );
  assert.equal(tracker.inFlight, false);
  assert.deepEqual(tracker.resumeFrames(), []);
  // A replayed done of a turn no longer tracked is passed through: the view ignores it.
  assert.ok(
    tracker.accept(
      ...wire({
        type: 'done',
        id: 'd',
        n: 1,
        usage: {},
        finish_reason: 'stop'
      })
    )
  );
});

test('frames without n, of untracked turns, and hello always pass', () => {
  const tracker = new ResumeTracker();
  tracker.begin('t');
  assert.ok(tracker.accept(...chunk('other', 1, 0, 'x')));
  assert.ok(tracker.accept(...chunk('other', 1, 0, 'x')));
  const unnumbered = parseServerFrame(
    JSON.stringify({ type: 'chunk', id: 't', seq: 0, text: 'x' })
  );
  assert.ok(unnumbered);
  assert.ok(tracker.accept(unnumbered, null));
  assert.ok(tracker.accept(unnumbered, null));
  const hello = wire({
    type: 'hello',
    protocol_version: 1,
    model: { configured: true, name: 'm' },
    models: ['m']
  });
  assert.ok(tracker.accept(...hello));
  assert.equal(tracker.lastSeen('t'), 0);
});

test('frameNumber reads only a positive integer n', () => {
  assert.equal(frameNumber({ n: 7 }), 7);
  for (const bad of [
    { n: 0 },
    { n: -1 },
    { n: 1.5 },
    { n: '3' },
    {},
    null,
    3
  ]) {
    assert.equal(frameNumber(bad), null, JSON.stringify(bad));
  }
});

test('abandon ends every turn in flight with resume_unavailable', () => {
  const tracker = new ResumeTracker();
  tracker.begin('x');
  tracker.begin('y');
  const frames = tracker.abandon('too long');
  assert.deepEqual(
    frames.map(f => [f.id, f.code, f.message]),
    [
      ['x', 'resume_unavailable', 'too long'],
      ['y', 'resume_unavailable', 'too long']
    ]
  );
  assert.equal(tracker.inFlight, false);
});

test('forget stops checking a turn', () => {
  const tracker = new ResumeTracker();
  tracker.begin('f');
  tracker.accept(...chunk('f', 1, 0, 'a'));
  tracker.forget('f');
  assert.equal(tracker.lastSeen('f'), null);
  assert.ok(tracker.accept(...chunk('f', 1, 0, 'a')));
});

test('an id-less refusal ends the newest turn that had no frame yet', () => {
  const tracker = new ResumeTracker();
  tracker.begin('answered');
  tracker.accept(...chunk('answered', 1, 0, 'x'));
  tracker.begin('older');
  tracker.begin('huge');
  tracker.accept(
    ...wire({
      type: 'error',
      id: null,
      code: 'frame_too_large',
      message: 'big'
    })
  );
  assert.deepEqual(tracker.turns, ['answered', 'older']);
  // Other id-less errors (a server bug) say nothing about which turn: all stay.
  tracker.accept(
    ...wire({ type: 'error', id: null, code: 'internal', message: 'bug' })
  );
  assert.deepEqual(tracker.turns, ['answered', 'older']);
});
