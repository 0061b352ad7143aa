import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CompletionCache, MAX_ENTRIES } from '../src/completion/cache';
import {
  CompletionClient,
  DEFAULT_BACKOFF_MS,
  IClock,
  ICompletionQuery,
  ISocketLike,
  NOTICE_INTERVAL_MS,
  OPEN_WAIT_MS
} from '../src/completion/client';
import {
  canCompleteBefore,
  clampLines,
  completionVariables,
  earlierCells,
  fileTypeOf,
  MAX_CELLS_TOTAL_CHARS,
  MAX_PREFIX_CHARS,
  splitAtCursor,
  wantsMultiline
} from '../src/completion/context';
import { readCompletionSettings } from '../src/completion/settings';
import { CompletionStatusModel } from '../src/completion/status';
import {
  MAX_COMPLETION_CELL_CHARS,
  MAX_COMPLETION_CELLS
} from '../src/protocol';

/** A socket the test opens, feeds and reads by hand. */
class FakeSocket implements ISocketLike {
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  closed = false;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(): void {
    this.readyState = 3;
    this.onclose?.({});
  }
}

/** A clock whose timers fire only when the test advances it. */
class ManualClock implements IClock {
  time = 1_000_000;
  timers: { at: number; callback: () => void; handle: number }[] = [];
  private _next = 1;
  now(): number {
    return this.time;
  }
  set(callback: () => void, ms: number): unknown {
    const handle = this._next++;
    this.timers.push({ at: this.time + ms, callback, handle });
    return handle;
  }
  clear(handle: unknown): void {
    this.timers = this.timers.filter(t => t.handle !== handle);
  }
  advance(ms: number): void {
    this.time += ms;
    const due = this.timers.filter(t => t.at <= this.time);
    this.timers = this.timers.filter(t => t.at > this.time);
    due.forEach(t => t.callback());
  }
}

const query = (prefix = 'import num'): ICompletionQuery => ({
  path: 'a.ipynb',
  language: 'python',
  prefix,
  suffix: '',
  cells: [{ cell_type: 'code', source: 'x = 1' }],
  variables: [{ name: 'df', type: 'pandas.DataFrame', shape: '(3, 2)' }],
  multiline: true,
  maxLines: 8
});

function setup(): {
  client: CompletionClient;
  sockets: FakeSocket[];
  clock: ManualClock;
} {
  const sockets: FakeSocket[] = [];
  const clock = new ManualClock();
  const client = new CompletionClient({
    url: () => 'ws://host/rubberduck/api/complete/ws',
    createSocket: url => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    clock
  });
  return { client, sockets, clock };
}

const tick = () => new Promise(resolve => setImmediate(resolve));

test('a request waits for the socket, then goes as one complete frame', () => {
  const { client, sockets } = setup();
  const pending = client.complete(query());
  assert.equal(sockets.length, 1);
  assert.equal(client.state, 'connecting');
  assert.equal(sockets[0].sent.length, 0);
  sockets[0].open();
  assert.equal(sockets[0].sent.length, 1);
  const frame = sockets[0].sent[0];
  assert.equal(frame.type, 'complete');
  assert.equal(frame.v, 1);
  assert.equal(frame.id, pending.id);
  assert.equal(frame.prefix, 'import num');
  assert.equal(frame.max_lines, 8);
  assert.deepEqual(frame.variables, [
    { name: 'df', type: 'pandas.DataFrame', shape: '(3, 2)' }
  ]);
});

test('chunks accumulate; done replaces them with the final, trimmed text', async () => {
  const { client, sockets } = setup();
  const pending = client.complete(query());
  sockets[0].open();
  const seen: string[] = [];
  const reading = (async () => {
    for await (const text of pending.updates()) {
      seen.push(text);
    }
  })();
  sockets[0].receive({ type: 'completion.chunk', id: pending.id, text: 'py ' });
  await tick();
  assert.equal(pending.state, 'streaming');
  sockets[0].receive({
    type: 'completion.chunk',
    id: pending.id,
    text: 'as np)'
  });
  await tick();
  assert.equal(pending.text, 'py as np)');
  sockets[0].receive({
    type: 'completion.done',
    id: pending.id,
    text: 'py as np',
    cached: false
  });
  await reading;
  assert.equal(pending.state, 'done');
  assert.equal(pending.text, 'py as np');
  assert.equal(seen.at(-1), 'py as np');
  assert.equal(client.current, null);
});

test('a new request cancels the running one at once; its late frames are ignored', () => {
  const { client, sockets } = setup();
  const first = client.complete(query('a'));
  sockets[0].open();
  const second = client.complete(query('ab'));
  assert.equal(first.state, 'ended');
  assert.equal(first.endReason, 'cancelled');
  assert.deepEqual(
    sockets[0].sent.map(f => [f.type, f.id]),
    [
      ['complete', first.id],
      ['cancel', first.id],
      ['complete', second.id]
    ]
  );
  sockets[0].receive({ type: 'completion.chunk', id: first.id, text: 'late' });
  sockets[0].receive({ type: 'completion.chunk', id: second.id, text: 'c' });
  assert.equal(first.text, '');
  assert.equal(second.text, 'c');
  assert.equal(client.current, second);
});

test('cancelCurrent sends a cancel only for a request that went out', () => {
  const { client, sockets } = setup();
  const waiting = client.complete(query());
  client.cancelCurrent();
  assert.equal(waiting.endReason, 'cancelled');
  sockets[0].open();
  assert.equal(sockets[0].sent.length, 0); // never sent, so nothing to cancel
  const sent = client.complete(query());
  client.cancelCurrent();
  assert.deepEqual(
    sockets[0].sent.map(f => f.type),
    ['complete', 'cancel']
  );
  assert.equal(sent.state, 'ended');
});

test('rate_limited pauses requests quietly for retry_after; other errors notify once a minute', () => {
  const { client, sockets, clock } = setup();
  const notices: string[] = [];
  client.notice.connect((_, n) => notices.push(`${n.code}: ${n.message}`));
  const first = client.complete(query());
  sockets[0].open();
  sockets[0].receive({
    type: 'completion.error',
    id: first.id,
    code: 'rate_limited',
    message: 'Too many completions',
    retry_after: 2
  });
  assert.equal(first.endReason, 'rate_limited');
  assert.deepEqual(notices, []);
  const blocked = client.complete(query());
  assert.equal(blocked.endReason, 'rate_limited');
  assert.equal(sockets[0].sent.length, 1);
  clock.advance(2_001);
  assert.equal(client.blockedUntil, 0);
  const failing = client.complete(query());
  sockets[0].receive({
    type: 'completion.error',
    id: failing.id,
    code: 'provider_error',
    message: 'The provider failed; check its URL.',
    retry_after: null
  });
  const again = client.complete(query());
  sockets[0].receive({
    type: 'completion.error',
    id: again.id,
    code: 'provider_error',
    message: 'The provider failed; check its URL.',
    retry_after: null
  });
  assert.deepEqual(notices, [
    'provider_error: The provider failed; check its URL.'
  ]);
  clock.advance(NOTICE_INTERVAL_MS);
  const later = client.complete(query());
  sockets[0].receive({
    type: 'completion.error',
    id: later.id,
    code: 'provider_error',
    message: 'still failing',
    retry_after: null
  });
  assert.equal(notices.length, 2);
});

test('an error without an id (a frame too large) ends the request in flight', () => {
  const { client, sockets } = setup();
  const notices: string[] = [];
  client.notice.connect((_, n) => notices.push(n.code));
  const pending = client.complete(query());
  sockets[0].open();
  sockets[0].receive({
    type: 'completion.error',
    id: null,
    code: 'frame_too_large',
    message: 'Frame of 300000 bytes exceeds the limit',
    retry_after: null
  });
  assert.equal(pending.endReason, 'error');
  assert.deepEqual(notices, ['frame_too_large']);
});

test('rate_limited without retry_after pauses for the default backoff', () => {
  const { client, sockets, clock } = setup();
  const first = client.complete(query());
  sockets[0].open();
  sockets[0].receive({
    type: 'completion.error',
    id: first.id,
    code: 'rate_limited',
    message: '',
    retry_after: null
  });
  assert.equal(client.blockedUntil, clock.now() + DEFAULT_BACKOFF_MS);
});

test('a drop ends the running request; the next one reconnects after the backoff', () => {
  const { client, sockets, clock } = setup();
  const running = client.complete(query());
  sockets[0].open();
  sockets[0].drop();
  assert.equal(running.endReason, 'dropped');
  assert.equal(client.state, 'closed');
  assert.equal(sockets.length, 1); // idle: no reconnect until someone types
  const next = client.complete(query());
  assert.equal(sockets.length, 1); // still inside the backoff (0.5-1 s)
  clock.advance(1_000);
  assert.equal(sockets.length, 2);
  sockets[1].open();
  assert.equal(sockets[1].sent[0].id, next.id);
  assert.equal(client.state, 'open');
});

test('a request gives up when the socket does not open in time', () => {
  const { client, sockets, clock } = setup();
  const pending = client.complete(query());
  clock.advance(OPEN_WAIT_MS);
  assert.equal(pending.endReason, 'dropped');
  sockets[0].open();
  assert.equal(sockets[0].sent.length, 0);
});

test('stop closes the socket and cancels; malformed frames are ignored', () => {
  const { client, sockets } = setup();
  const pending = client.complete(query());
  sockets[0].open();
  sockets[0].onmessage?.({ data: 'not json' });
  sockets[0].receive({ type: 'completion.chunk', id: pending.id }); // no text
  assert.equal(pending.state, 'waiting');
  client.stop();
  assert.equal(pending.endReason, 'cancelled');
  assert.ok(sockets[0].closed);
  assert.equal(client.state, 'idle');
});

test('the cache gives back the same request and the rest of a completion typed into', () => {
  const cache = new CompletionCache();
  cache.put('a.ipynb', 'df.gro', ')', 'upby("a").sum()');
  assert.equal(cache.get('a.ipynb', 'df.gro', ')'), 'upby("a").sum()');
  assert.equal(cache.get('a.ipynb', 'df.gro', ''), undefined);
  assert.equal(cache.continuation('a.ipynb', 'df.group', ')'), 'by("a").sum()');
  assert.equal(cache.continuation('a.ipynb', 'df.grox', ')'), null);
  assert.equal(cache.continuation('b.ipynb', 'df.group', ')'), null);
  // Typed all of it: nothing left to show, so a new request may go.
  assert.equal(
    cache.continuation('a.ipynb', 'df.groupby("a").sum()', ')'),
    null
  );
  // Cut while streaming: typing along it works, the same request is not answered.
  cache.putShown('a.ipynb', 'x = ', '', 'sum(s');
  assert.equal(cache.continuation('a.ipynb', 'x = su', ''), 'm(s');
  assert.equal(cache.get('a.ipynb', 'x = ', ''), undefined);
  cache.dismissShown();
  assert.equal(cache.continuation('a.ipynb', 'df.group', ')'), null);
  assert.equal(cache.get('a.ipynb', 'df.gro', ')'), 'upby("a").sum()');
  for (let i = 0; i < MAX_ENTRIES + 5; i++) {
    cache.put('a.ipynb', `p${i}`, '', `t${i}`);
  }
  assert.equal(cache.size, MAX_ENTRIES);
  assert.equal(cache.get('a.ipynb', 'p0', ''), undefined);
});

test('earlier cells go nearest first, trimmed and bounded, raw and empty cells left out', () => {
  const cells = [
    { cell_type: 'code', source: 'import pandas as pd' },
    { cell_type: 'raw', source: 'raw text' },
    { cell_type: 'markdown', source: '# Title' },
    { cell_type: 'code', source: '   ' },
    {
      cell_type: 'code',
      source: 'head\n' + `${'x'.repeat(99)}\n`.repeat(45) + 'end'
    },
    { cell_type: 'code', source: 'the active cell' },
    { cell_type: 'code', source: 'after it' }
  ];
  const out = earlierCells(cells, 5);
  assert.deepEqual(
    out.map(c => [c.cell_type, c.source.length]),
    [
      ['code', 39 * 100 + 3],
      ['markdown', 7],
      ['code', 19]
    ]
  );
  // A long cell keeps its end, from a line start.
  assert.ok(out[0].source.endsWith('\nend'));
  assert.ok(out[0].source.startsWith('x'));
  const many = Array.from({ length: 80 }, (_, i) => ({
    cell_type: 'code',
    source: `c${i}`
  }));
  const bounded = earlierCells(many, 80);
  assert.equal(bounded.length, MAX_COMPLETION_CELLS);
  assert.equal(bounded[0].source, 'c79');
  const big = Array.from({ length: 30 }, () => ({
    cell_type: 'code',
    source: 'z'.repeat(MAX_COMPLETION_CELL_CHARS)
  }));
  const capped = earlierCells(big, 30);
  const total = capped.reduce((n, c) => n + c.source.length, 0);
  assert.equal(total, MAX_CELLS_TOTAL_CHARS);
  assert.equal(
    capped.length,
    MAX_CELLS_TOTAL_CHARS / MAX_COMPLETION_CELL_CHARS
  );
});

test('the cursor splits text by code points, and long text is bounded', () => {
  assert.deepEqual(splitAtCursor('a😀b = 1', 3), {
    prefix: 'a😀b',
    suffix: ' = 1'
  });
  const long = 'y'.repeat(MAX_PREFIX_CHARS + 100);
  assert.equal(
    splitAtCursor(long, long.length).prefix.length,
    MAX_PREFIX_CHARS
  );
});

test('completion only before closing brackets or the line end', () => {
  assert.ok(canCompleteBefore(''));
  assert.ok(canCompleteBefore(')\nnext line'));
  assert.ok(canCompleteBefore('"]):'));
  assert.ok(!canCompleteBefore('x + 1)'));
  assert.ok(wantsMultiline('  \nmore'));
  assert.ok(!wantsMultiline(')'));
  assert.equal(clampLines('a\nb\nc', 2), 'a\nb');
  assert.equal(clampLines('a\nb', 0), 'a\nb');
});

test('kernel variables go as names, types and shapes, never values', () => {
  assert.deepEqual(
    completionVariables([
      {
        name: 'df',
        type: 'pandas.DataFrame',
        summary: 'shape (100, 3); columns a, b'
      },
      { name: 's', type: 'str', summary: "'sk-secret-value'" },
      { name: 'v', type: 'numpy.ndarray', summary: 'shape (5,)' }
    ]),
    [
      { name: 'df', type: 'pandas.DataFrame', shape: '(100, 3)' },
      { name: 's', type: 'str', shape: '' },
      { name: 'v', type: 'numpy.ndarray', shape: '(5,)' }
    ]
  );
  assert.deepEqual(completionVariables(null), []);
});

test('file types: notebook cells, python files, other extensions', () => {
  assert.equal(fileTypeOf(true, 'a.ipynb', 'text/x-ipython'), 'notebook');
  assert.equal(fileTypeOf(false, 'src/m.py', undefined), 'python');
  assert.equal(fileTypeOf(false, 'src/m.txt', 'text/plain'), 'txt');
  assert.equal(fileTypeOf(false, 'Makefile', 'text/plain'), '');
});

test('settings are checked; bad values keep their defaults', () => {
  const values = readCompletionSettings({
    inlineCompletionEnabled: false,
    inlineCompletionDebounceMs: 99_999,
    inlineCompletionMaxLines: 'many',
    inlineCompletionFileTypes: ['Notebook', '.PY'],
    sendVariables: false
  });
  assert.deepEqual(values, {
    enabled: false,
    debounceMs: 2_000,
    maxLines: 8,
    fileTypes: ['notebook', 'py'],
    sendVariables: false
  });
});

test('status: unavailable with the server reason, on and off by the user switch', async () => {
  let body: unknown = {
    enabled: false,
    model: null,
    fim: false,
    reason: 'No completion model is configured'
  };
  const model = new CompletionStatusModel(() => Promise.resolve(body));
  assert.equal(model.state, 'checking');
  await model.refresh();
  assert.equal(model.state, 'unavailable');
  assert.match(model.title, /No completion model is configured/);
  body = { enabled: true, model: 'fake', fim: true, reason: null };
  await model.refresh();
  assert.equal(model.state, 'on');
  assert.ok(model.active);
  model.userEnabled = false;
  assert.equal(model.state, 'off');
  const failing = new CompletionStatusModel(() =>
    Promise.reject(new Error('no completion endpoint'))
  );
  await failing.refresh();
  assert.equal(failing.state, 'unavailable');
  assert.match(failing.title, /no completion endpoint/);
});
