import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ChatModel,
  IConversationSource,
  LoadFailure,
  shownMessages,
  statusLine
} from '../src/chatmodel';
import type {
  IAnswerMeta,
  IConversationDetail,
  IStoredMessage
} from '../src/protocol';

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

// --- conversations ------------------------------------------------------------------

const META: IAnswerMeta = {
  route: {
    engine: 'simple',
    reason: 'r',
    confidence: 1,
    forced: false,
    command: null
  },
  steps: [],
  citations: [],
  suggestions: [],
  corrections: [],
  notices: [],
  usage: null,
  model: null,
  cost_usd: null,
  error: null
};

function stored(
  role: 'user' | 'assistant',
  turn: string,
  content: string,
  status = role === 'user' ? 'answered' : 'complete',
  meta: Partial<IAnswerMeta> = {}
): IStoredMessage {
  return {
    id: `${turn}-${role}`,
    seq: 0,
    role,
    content,
    turn_id: turn,
    status,
    engine: role === 'assistant' ? 'simple' : null,
    meta: { ...META, ...meta },
    created_at: 0
  };
}

function detail(
  id: string,
  messages: IStoredMessage[] = []
): IConversationDetail {
  return {
    conversation: {
      id,
      title: `title of ${id}`,
      context_type: 'question',
      created_at: 0,
      updated_at: 0,
      task: null,
      n_messages: messages.length,
      last_question: null
    },
    messages,
    suggestions: []
  };
}

/** The REST API, answering each getConversation when the test says so. */
class FakeApi implements IConversationSource {
  calls: string[] = [];
  private _pending = new Map<
    string,
    {
      resolve: (d: IConversationDetail | null) => void;
      reject: (e: Error) => void;
    }
  >();
  getConversation(id: string): Promise<IConversationDetail | null> {
    this.calls.push(id);
    return new Promise((resolve, reject) =>
      this._pending.set(id, { resolve, reject })
    );
  }
  async answer(id: string, value: IConversationDetail | null): Promise<void> {
    this._take(id).resolve(value);
    await settle();
  }
  async fail(id: string, error: Error): Promise<void> {
    this._take(id).reject(error);
    await settle();
  }
  private _take(id: string) {
    const pending = this._pending.get(id);
    assert.ok(pending, `no request for ${id}`);
    this._pending.delete(id);
    return pending;
  }
}

const settle = (): Promise<void> =>
  new Promise(resolve => setImmediate(resolve));

/** What the model told its view, in order. */
function record(model: ChatModel): string[] {
  const seen: string[] = [];
  model.conversationChanged.connect((_, c) =>
    seen.push(`changed ${c.id}${c.left ? ` left ${c.left.id}` : ''}`)
  );
  model.loaded.connect((_, d) => seen.push(`loaded ${d.conversation.id}`));
  model.loadFailed.connect((_, f: LoadFailure) =>
    seen.push(
      `failed ${f.id} ${f.reason === 'error' ? (f.error as Error).message : f.reason}`
    )
  );
  return seen;
}

test('switching twice fast shows only the second, whichever answers first', async () => {
  for (const order of [
    ['b', 'c'],
    ['c', 'b']
  ]) {
    const api = new FakeApi();
    const model = new ChatModel('a', api);
    const seen = record(model);
    const toB = model.switchTo('b');
    const toC = model.switchTo('c');
    assert.equal(model.loading, true);
    for (const id of order) {
      await api.answer(id, detail(id, [stored('user', 't', `in ${id}`)]));
    }
    assert.equal(await toB, 'superseded');
    assert.equal(await toC, 'loaded');
    assert.deepEqual(seen, ['changed c', 'loaded c'], `answered ${order}`);
    assert.equal(model.conversationId, 'c');
    assert.equal(model.conversation?.conversation.id, 'c');
    assert.deepEqual(
      model.messages.map(m => m.message.content),
      ['in c']
    );
    assert.equal(model.loading, false);
  }
});

test('a failed load reports an error and keeps the previous conversation', async () => {
  const api = new FakeApi();
  const model = new ChatModel('a', api);
  const restoring = model.restore();
  await api.answer('a', detail('a', [stored('user', 't1', 'kept')]));
  assert.equal(await restoring, 'loaded');
  model.enqueue('queued for a');
  const seen = record(model);

  const toB = model.switchTo('b');
  await api.fail('b', new Error('server down'));
  assert.equal(await toB, 'failed');
  const toC = model.switchTo('c');
  await api.answer('c', null);
  assert.equal(await toC, 'failed');

  assert.deepEqual(seen, ['failed b server down', 'failed c missing']);
  assert.equal(model.conversationId, 'a');
  assert.deepEqual(
    model.messages.map(m => m.message.content),
    ['kept']
  );
  assert.deepEqual(model.queue, ['queued for a']);
  assert.equal(model.loading, false);
});

test('restoring is quiet: a remembered id the server does not know is no error', async () => {
  const api = new FakeApi();
  const model = new ChatModel('never-sent', api);
  const seen = record(model);
  const restoring = model.restore();
  await api.answer('never-sent', null);
  assert.equal(await restoring, 'failed');
  assert.deepEqual(seen, []);
  assert.equal(model.conversationId, 'never-sent');
  assert.equal(model.conversation, null);
});

test('a late load loses to a new conversation and to an answer started meanwhile', async () => {
  const api = new FakeApi();
  const model = new ChatModel('a', api);
  const seen = record(model);
  const restoring = model.restore();
  model.newConversation('n');
  await api.answer('a', detail('a', [stored('user', 't', 'old')]));
  assert.equal(await restoring, 'superseded');
  assert.equal(model.conversationId, 'n');
  assert.deepEqual(model.messages, []);

  const toB = model.switchTo('b');
  model.startTurn('t2', 'asked while b loaded');
  await api.answer('b', detail('b'));
  assert.equal(await toB, 'superseded');
  assert.deepEqual(seen, ['changed n']);
  assert.equal(model.conversationId, 'n');
  assert.equal(model.turn?.id, 't2');
});

test('switching leaves the streaming answer and drops the queue once it has loaded', async () => {
  const api = new FakeApi();
  const model = new ChatModel('a', api);
  const seen = record(model);
  model.startTurn('t1', 'q');
  model.enqueue('later');
  // Already here with an answer coming in: nothing to reload, nothing asked.
  const same = model.switchTo('a');
  assert.deepEqual(api.calls, []);
  assert.equal(await same, 'loaded');

  const toB = model.switchTo('b');
  assert.equal(model.turn?.id, 't1', 'the answer goes on until b has loaded');
  await api.answer('b', detail('b'));
  assert.equal(await toB, 'loaded');
  assert.deepEqual(seen, ['changed b left t1', 'loaded b']);
  assert.equal(model.turn, null);
  assert.deepEqual(model.queue, []);

  // The same conversation again, with no answer streaming: loaded again, not moved.
  const again = model.switchTo('b');
  await api.answer('b', detail('b', [stored('user', 't3', 'new')]));
  assert.equal(await again, 'loaded');
  assert.deepEqual(seen.slice(2), ['loaded b']);
  assert.equal(model.messages.length, 1);
});

test('stored messages keep the server order; cut-off, stopped, failed and refused are told apart', () => {
  const messages = [
    // Interleaved the way display_order sends a question asked while another streamed.
    stored('user', 't1', 'first'),
    stored('assistant', 't1', 'partial answer', 'incomplete'),
    stored('user', 't2', 'second'),
    stored('assistant', 't2', 'so far', 'complete', {
      error: { code: 'cancelled', message: '', cancelled: true }
    }),
    stored('user', 't3', 'third', 'pending'),
    stored('user', 't4', 'fourth'),
    stored('assistant', 't4', 'raw', 'error', {
      error: { code: 'provider_unavailable', message: 'down', cancelled: false }
    }),
    stored('user', 't5', 'fifth'),
    stored('assistant', 't5', 'busy', 'error', {
      route: null,
      error: { code: 'busy', message: 'Busy now', cancelled: false }
    }),
    stored('user', 't6', 'sixth', 'pending'),
    stored('assistant', 't6', 'streaming', 'pending')
  ];
  // The server's order is kept even where seq says otherwise.
  messages.forEach((m, i) => (m.seq = messages.length - i));
  const shown = shownMessages(detail('c', messages));
  assert.deepEqual(
    shown.map(m => m.message.content),
    messages.map(m => m.content)
  );
  const summary = shown.map(m =>
    m.kind === 'question'
      ? `q${m.waiting ? ' waiting' : ''}`
      : m.kind === 'answer'
        ? `a ${m.ending}${m.showText ? '' : ' no-text'}`
        : `refusal ${m.code} ${m.text}`
  );
  assert.deepEqual(summary, [
    'q',
    'a cut-off',
    'q',
    'a stopped',
    'q waiting',
    'q',
    'a failed no-text',
    'q',
    'refusal busy Busy now',
    // Its answer is streaming and stored as it goes: shown, the question still waits.
    'q waiting',
    'a streaming'
  ]);
});

test('the spend counts the loaded answers, then live ones, and restarts with a new conversation', async () => {
  const api = new FakeApi();
  const model = new ChatModel('a', api);
  const spent: number[] = [];
  model.totalsChanged.connect((_, totals) => spent.push(totals.total_tokens));
  const usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 };
  const restoring = model.restore();
  await api.answer(
    'a',
    detail('a', [
      stored('user', 't1', 'q'),
      stored('assistant', 't1', 'a', 'complete', {
        model: 'm',
        usage,
        cost_usd: 0.5
      }),
      // A refusal spent nothing and is no answer.
      stored('assistant', 't2', 'busy', 'error', {
        route: null,
        model: 'm',
        usage,
        error: { code: 'busy', message: 'b', cancelled: false }
      })
    ])
  );
  await restoring;
  assert.equal(model.totals.requests, 1);
  assert.equal(model.totals.cost_usd, 0.5);
  model.addUsage({
    type: 'done',
    id: 't3',
    usage,
    finish_reason: 'stop',
    model: 'm',
    cost_usd: null,
    cached: false,
    attempts: [],
    engine: 'simple',
    conversation_id: null,
    message_id: null
  });
  assert.equal(model.totals.unpriced_requests, 1);
  model.newConversation('n');
  assert.deepEqual(spent, [10, 20, 0]);
  assert.equal(model.totals.requests, 0);
});
