import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChatModel, statusLine } from '../src/chatmodel';

const texts = (chunks: { text: string }[]): string[] => chunks.map(c => c.text);

test('chunks come out in order: early ones wait, repeats and other turns are dropped', () => {
  const model = new ChatModel('c1');
  model.startTurn('t1', 'q');
  assert.deepEqual(texts(model.acceptChunk('t1', 1, { text: 'b' })), []);
  assert.deepEqual(texts(model.acceptChunk('t1', 0, { text: 'a' })), [
    'a',
    'b'
  ]);
  assert.deepEqual(texts(model.acceptChunk('t1', 1, { text: 'b' })), []);
  assert.deepEqual(texts(model.acceptChunk('t2', 2, { text: 'x' })), []);
  const step = model.acceptChunk('t1', 2, { text: 'c', step: 'plan' });
  assert.deepEqual(step, [{ text: 'c', step: 'plan' }]);
});

test('flush gives the chunks stranded behind a gap, in order, once', () => {
  const model = new ChatModel('c1');
  model.startTurn('t1', 'q');
  model.acceptChunk('t1', 4, { text: 'e' });
  model.acceptChunk('t1', 2, { text: 'c' });
  assert.deepEqual(texts(model.flush()), ['c', 'e']);
  assert.deepEqual(model.flush(), []);
  // Past the gap now: a late chunk 3 is a repeat of what was skipped.
  assert.deepEqual(texts(model.acceptChunk('t1', 3, { text: 'd' })), []);
  assert.deepEqual(texts(model.acceptChunk('t1', 5, { text: 'f' })), ['f']);
});

test('a turn starts, is stopped once, and ends with signals', () => {
  const model = new ChatModel('c1');
  const seen: (string | null)[] = [];
  model.turnChanged.connect((_, turn) =>
    seen.push(turn ? `${turn.id}${turn.stopping ? ' stopping' : ''}` : null)
  );
  model.startTurn('t1', 'q');
  assert.equal(model.markStopping(), true);
  assert.equal(model.markStopping(), false);
  model.endTurn();
  model.endTurn();
  assert.deepEqual(seen, ['t1', 't1 stopping', null]);
  assert.equal(model.turn, null);
  assert.deepEqual(model.acceptChunk('t1', 0, { text: 'late' }), []);
});

test('the queue waits for the answer, keeps its order and can lose an item', () => {
  const model = new ChatModel('c1');
  const sizes: number[] = [];
  model.queueChanged.connect((_, queue) => sizes.push(queue.length));
  model.startTurn('t1', 'q');
  assert.equal(model.enqueue('   '), false);
  model.enqueue('second');
  model.enqueue('third');
  model.enqueue('fourth');
  model.removeQueued(1);
  assert.deepEqual(model.queue, ['second', 'fourth']);
  assert.equal(model.takeQueued(), null, 'nothing goes while answering');
  model.endTurn();
  assert.equal(model.takeQueued(), 'second');
  assert.deepEqual(model.queue, ['fourth']);
  assert.deepEqual(sizes, [1, 2, 3, 2, 1]);
});

test('switching conversation leaves the turn and drops the queue', () => {
  const model = new ChatModel('c1');
  const moved: string[] = [];
  model.conversationChanged.connect((_, id) => moved.push(id));
  model.startTurn('t1', 'q');
  model.enqueue('later');
  const left = model.switchTo('c2');
  assert.equal(left?.id, 't1');
  assert.equal(model.turn, null);
  assert.deepEqual(model.queue, []);
  assert.equal(model.conversationId, 'c2');
  model.switchTo('c2');
  assert.deepEqual(moved, ['c2']);
});

test('the status line follows the connection and the model', () => {
  const base = {
    resuming: false,
    retryDelaySeconds: 4,
    configured: true,
    model: 'gpt'
  };
  assert.deepEqual(statusLine({ ...base, connection: 'open' }), {
    state: 'ready',
    text: 'Model: gpt'
  });
  assert.equal(
    statusLine({ ...base, connection: 'open', configured: false }).state,
    'no-model'
  );
  assert.equal(
    statusLine({ ...base, connection: 'closed' }).text,
    'Disconnected. Reconnecting in 4 s…'
  );
  assert.match(
    statusLine({ ...base, connection: 'connecting', resuming: true }).text,
    /continue the answer/
  );
});
