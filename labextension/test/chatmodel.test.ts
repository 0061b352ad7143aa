import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ChatModel,
  IChatTurn,
  IIdStorage,
  IStatusLine,
  statusLine
} from '../src/chatmodel';
import type { IConversationDetail, IStoredMessage } from '../src/protocol';

class MemoryStorage implements IIdStorage {
  items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

function model(storage: IIdStorage | null = new MemoryStorage()): ChatModel {
  let n = 0;
  return new ChatModel({
    storageKey: 'k',
    storage,
    newId: () => `c${++n}`
  });
}

test('chunks come out in seq order; a gap holds later ones; repeats are dropped', () => {
  const m = model();
  m.startTurn('t', 'q');
  assert.deepEqual(m.acceptChunk(1, { text: 'b' }), []);
  assert.deepEqual(m.acceptChunk(2, { text: 'c', step: 's' }), []);
  assert.deepEqual(
    m.acceptChunk(0, { text: 'a' }).map(c => c.text),
    ['a', 'b', 'c']
  );
  assert.deepEqual(m.acceptChunk(1, { text: 'b' }), []);
  assert.deepEqual(m.acceptChunk(3, { text: 'd' }), [{ text: 'd' }]);
});

test('flush gives what is stranded behind a gap, in order, once', () => {
  const m = model();
  m.startTurn('t', 'q');
  m.acceptChunk(0, { text: 'a' });
  m.acceptChunk(4, { text: 'e' });
  m.acceptChunk(2, { text: 'c' });
  assert.deepEqual(
    m.flush().map(c => c.text),
    ['c', 'e']
  );
  assert.deepEqual(m.flush(), []);
  // Chunks the flush passed over stay behind it.
  assert.deepEqual(m.acceptChunk(3, { text: 'd' }), []);
  assert.deepEqual(m.acceptChunk(5, { text: 'f' }), [{ text: 'f' }]);
});

test('a new turn starts its numbering over; no chunk is taken with no turn', () => {
  const m = model();
  assert.deepEqual(m.acceptChunk(0, { text: 'x' }), []);
  m.startTurn('t1', 'q');
  m.acceptChunk(0, { text: 'a' });
  m.acceptChunk(2, { text: 'stale' });
  m.endTurn('t1');
  m.startTurn('t2', 'q2');
  assert.deepEqual(m.acceptChunk(0, { text: 'b' }), [{ text: 'b' }]);
  assert.deepEqual(m.flush(), []);
});

test('turn lifecycle: waiting until the first text, stop once, end by id only', () => {
  const m = model();
  const seen: (IChatTurn | null)[] = [];
  m.turnChanged.connect((_, turn) => seen.push(turn ? { ...turn } : null));
  m.startTurn('t', 'why?');
  assert.equal(m.turn?.waiting, true);
  assert.ok(m.isCurrent('t'));
  assert.ok(!m.isCurrent('u'));
  assert.ok(!m.isCurrent(null));
  m.acceptChunk(1, { text: 'later' });
  assert.equal(m.turn?.waiting, true, 'nothing shown yet');
  m.acceptChunk(0, { text: 'first' });
  assert.equal(m.turn?.waiting, false);
  assert.ok(m.beginStop());
  assert.ok(!m.beginStop(), 'a second stop does nothing');
  m.endTurn('other');
  assert.ok(m.turn, 'another id does not end it');
  m.endTurn('t');
  assert.equal(m.turn, null);
  assert.ok(!m.beginStop());
  assert.deepEqual(
    seen.map(t => (t ? [t.waiting, t.stopping] : null)),
    [[true, false], [false, false], [false, true], null]
  );
});

test('a step ends the waiting too', () => {
  const m = model();
  m.startTurn('t', 'q');
  m.markProgress();
  assert.equal(m.turn?.waiting, false);
});

test('the conversation id survives a reload through storage, and switching saves it', () => {
  const storage = new MemoryStorage();
  const first = model(storage);
  assert.equal(first.conversationId, 'c1');
  assert.equal(storage.getItem('k'), null, 'nothing saved before a message');
  first.saveConversationId();
  assert.equal(model(storage).conversationId, 'c1');
  const changes: string[] = [];
  first.conversationChanged.connect((_, id) => changes.push(id));
  assert.ok(first.setConversation('other'));
  assert.ok(!first.setConversation('other'));
  assert.equal(storage.getItem('k'), 'other');
  first.newConversation();
  assert.equal(first.conversationId, 'c2');
  assert.deepEqual(changes, ['other', 'c2']);
});

test('storage that throws (disabled) means a new conversation, not a crash', () => {
  const broken: IIdStorage = {
    getItem: () => {
      throw new Error('SecurityError');
    },
    setItem: () => {
      throw new Error('QuotaExceeded');
    }
  };
  const m = model(broken);
  assert.equal(m.conversationId, 'c1');
  m.saveConversationId();
  assert.equal(model(null).conversationId, 'c1');
});

test('a load is shown only if nothing moved on meanwhile', () => {
  const m = model();
  const id = m.conversationId;
  const token = m.beginLoad();
  assert.ok(m.isCurrentLoad(token, id));
  assert.ok(!m.isCurrentLoad(token, 'elsewhere'));
  m.startTurn('t', 'q');
  assert.ok(!m.isCurrentLoad(token, id), 'a turn started here');
  m.endTurn('t');
  const late = m.beginLoad();
  m.setConversation('other');
  assert.ok(!m.isLatestLoad(late), 'switching drops the late load');
  assert.ok(!m.isCurrentLoad(late, 'other'));
});

function message(
  seq: number,
  role: 'user' | 'assistant',
  turn: string,
  status: string
): IStoredMessage {
  return {
    id: `m${seq}`,
    seq,
    role,
    content: `${role} ${turn}`,
    turn_id: turn,
    status,
    engine: null,
    meta: {} as IStoredMessage['meta'],
    created_at: seq
  };
}

test('stored items keep the server order and flag questions still being answered', () => {
  const detail = {
    conversation: {} as IConversationDetail['conversation'],
    messages: [
      message(1, 'user', 'a', 'answered'),
      message(2, 'assistant', 'a', 'complete'),
      message(3, 'user', 'b', 'pending'),
      message(4, 'user', 'c', 'pending'),
      message(5, 'assistant', 'c', 'pending')
    ],
    suggestions: []
  };
  const items = model().storedItems(detail);
  assert.deepEqual(
    items.map(i => [
      i.kind,
      i.message.seq,
      i.kind === 'question' ? i.stillAnswering : null
    ]),
    [
      ['question', 1, false],
      ['answer', 2, null],
      ['question', 3, true],
      // Its partial answer is shown, and the question still says it is answered.
      ['question', 4, true],
      ['answer', 5, null]
    ]
  );
});

test('the queue holds questions while a turn streams, in order, cancellable', () => {
  const m = model();
  const sizes: number[] = [];
  m.queueChanged.connect((_, q) => sizes.push(q.length));
  m.startTurn('t', 'q');
  const a = m.enqueue('second');
  m.enqueue('third');
  assert.equal(m.takeQueued(), null, 'not while the answer streams');
  assert.ok(m.cancelQueued(a.id));
  assert.ok(!m.cancelQueued(a.id));
  m.endTurn('t');
  assert.equal(m.takeQueued()?.text, 'third');
  assert.equal(m.takeQueued(), null);
  m.enqueue('x');
  m.setConversation('elsewhere');
  assert.equal(m.queue.length, 0, 'leaving the conversation drops its queue');
  assert.deepEqual(sizes, [1, 2, 1, 0, 1, 0]);
});

test('status line follows the connection and emits only on change', () => {
  const m = model();
  const seen: IStatusLine[] = [];
  m.statusChanged.connect((_, s) => seen.push(s));
  const open = {
    state: 'open' as const,
    resuming: false,
    retryDelaySeconds: 2,
    model: { configured: true, name: 'gpt-x' },
    chosenModel: null
  };
  assert.deepEqual(m.updateStatus(open), {
    state: 'ready',
    text: 'Model: gpt-x'
  });
  m.updateStatus(open);
  assert.equal(seen.length, 1);
  assert.equal(
    m.updateStatus({ ...open, chosenModel: 'other' }).text,
    'Model: other'
  );
  assert.equal(
    statusLine({ ...open, model: { configured: false, name: null } }).state,
    'no-model'
  );
  assert.equal(
    statusLine({ ...open, state: 'closed' }).text,
    'Disconnected. Reconnecting in 2 s…'
  );
  assert.match(
    statusLine({ ...open, state: 'connecting', resuming: true }).text,
    /continue the answer/
  );
  assert.equal(seen.length, 2);
});
