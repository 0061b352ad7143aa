import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  describeStatus,
  IIndexBackend,
  IndexStatusModel,
  IScheduler,
  parseIndexStatus,
  POLL_IDLE_MAX_MS,
  POLL_IDLE_MS,
  POLL_INDEXING_MS
} from '../src/indexstatus/model';
import { ScopeChoice } from '../src/indexstatus/scope';

/** A scheduler whose one pending timer the test fires by hand. */
class ManualScheduler implements IScheduler {
  pending: { callback: () => void; ms: number } | null = null;
  set(callback: () => void, ms: number): unknown {
    this.pending = { callback, ms };
    return this.pending;
  }
  clear(handle: unknown): void {
    if (this.pending === handle) {
      this.pending = null;
    }
  }
  async fire(): Promise<void> {
    const due = this.pending;
    assert.ok(due, 'no poll scheduled');
    this.pending = null;
    due.callback();
    await new Promise(resolve => setImmediate(resolve));
  }
}

class FakeBackend implements IIndexBackend {
  replies: unknown[] = [];
  calls: string[] = [];
  fail: Error | null = null;
  private _last: unknown = { activity: 'idle', files: 0, chunks: 0 };
  private _next(): Promise<unknown> {
    if (this.fail) {
      return Promise.reject(this.fail);
    }
    if (this.replies.length) {
      this._last = this.replies.shift();
    }
    return Promise.resolve(this._last);
  }
  get(): Promise<unknown> {
    this.calls.push('get');
    return this._next();
  }
  start(scope?: string[]): Promise<unknown> {
    this.calls.push(`start ${JSON.stringify(scope ?? null)}`);
    return this._next();
  }
  stop(): Promise<unknown> {
    this.calls.push('stop');
    return this._next();
  }
}

const indexing = (done: number, total: number) => ({
  state: 'indexing',
  activity: 'indexing',
  done,
  total,
  files: 0,
  chunks: 0,
  scope: ['src']
});

const finished = {
  state: 'idle',
  activity: 'watching',
  files: 3,
  chunks: 9,
  scope: ['src'],
  last_report: {
    files_indexed: 3,
    chunks_written: 9,
    seconds: 0.5,
    skipped: [{ path: 'src/logo.png', reason: 'binary file', code: 'binary' }],
    skipped_total: 1,
    skipped_by_reason: { binary: 1 }
  }
};

test('parseIndexStatus reads the GET body and refuses junk', () => {
  assert.equal(parseIndexStatus('nope'), null);
  const status = parseIndexStatus(finished);
  assert.ok(status);
  assert.equal(status.activity, 'watching');
  assert.equal(status.done, null);
  assert.deepEqual(status.scope, ['src']);
  assert.equal(status.lastReport?.skipped[0].code, 'binary');
  assert.deepEqual(status.lastReport?.skippedByReason, { binary: 1 });
  assert.equal(parseIndexStatus({ activity: 'weird' })?.activity, 'unknown');
  // An older server without `activity` still says its state.
  assert.equal(parseIndexStatus({ state: 'error', error: 'x' })?.error, 'x');
});

test('describeStatus: indexing shows the count, errors their message', () => {
  const busy = parseIndexStatus(indexing(2, 5));
  assert.equal(describeStatus(busy).label, 'Indexing 2/5');
  const broken = parseIndexStatus({ activity: 'error', error: 'disk full' });
  assert.match(describeStatus(broken).description, /disk full/);
  const none = parseIndexStatus({ activity: 'idle', files: 0 });
  assert.equal(describeStatus(none).label, 'Not indexed');
  assert.match(describeStatus(null, 'offline').description, /offline/);
});

test('polls every second while indexing, then backs off while idle', async () => {
  const backend = new FakeBackend();
  const timers = new ManualScheduler();
  const model = new IndexStatusModel(backend, timers);
  const seen: string[] = [];
  model.changed.connect((_, s) => seen.push(s?.activity ?? 'null'));
  backend.replies = [indexing(0, 3)];
  await model.start(['src']);
  assert.deepEqual(backend.calls, ['start ["src"]']);
  assert.equal(timers.pending?.ms, POLL_INDEXING_MS);
  backend.replies = [indexing(2, 3), finished];
  await timers.fire();
  assert.equal(model.status?.done, 2);
  assert.equal(timers.pending?.ms, POLL_INDEXING_MS);
  await timers.fire();
  assert.equal(model.status?.activity, 'watching');
  assert.equal(timers.pending?.ms, POLL_IDLE_MS); // just changed: look again soon
  await timers.fire(); // unchanged: the delay doubles up to the cap
  assert.equal(timers.pending?.ms, POLL_IDLE_MS * 2);
  for (let i = 0; i < 10; i++) {
    await timers.fire();
  }
  assert.equal(timers.pending?.ms, POLL_IDLE_MAX_MS);
  assert.deepEqual(seen, ['indexing', 'indexing', 'watching']);
  model.dispose();
  assert.equal(timers.pending, null);
});

test('a failed request is reported and retried later; start rethrows', async () => {
  const backend = new FakeBackend();
  const timers = new ManualScheduler();
  const model = new IndexStatusModel(backend, timers);
  backend.fail = new Error('server gone');
  await model.refresh();
  assert.equal(model.fetchError, 'server gone');
  assert.ok((timers.pending?.ms ?? 0) >= POLL_IDLE_MS);
  await assert.rejects(model.start(), /server gone/);
  assert.ok(timers.pending, 'polling continues after a refused start');
  backend.fail = null;
  await timers.fire();
  assert.equal(model.fetchError, null);
  model.dispose();
});

test('stop asks the server and shows stopping', async () => {
  const backend = new FakeBackend();
  const model = new IndexStatusModel(backend, new ManualScheduler());
  backend.replies = [{ ...indexing(1, 4), stopping: true }];
  await model.stop();
  assert.deepEqual(backend.calls, ['stop']);
  assert.equal(model.status?.stopping, true);
  assert.equal(describeStatus(model.status).label, 'Stopping 1/4');
  model.dispose();
});

test('the whole project unticks and disables the folders, and unticking it restores them', () => {
  const choice = new ScopeChoice();
  choice.load(['data', 'notebooks', 'src'], ['src/models', 'data']);
  const ticked = (): string[] =>
    choice.boxes.filter(b => b.checked).map(b => b.name);
  assert.equal(choice.whole, false);
  assert.deepEqual(
    ticked(),
    ['data', 'src'],
    'a deeper saved path ticks its folder'
  );
  assert.deepEqual(choice.scope, ['data', 'src']);

  choice.setWhole(true);
  assert.deepEqual(choice.boxes, [
    { name: 'data', checked: false, disabled: true },
    { name: 'notebooks', checked: false, disabled: true },
    { name: 'src', checked: false, disabled: true }
  ]);
  assert.deepEqual(choice.scope, []);
  choice.setFolder('notebooks', true);
  assert.deepEqual(ticked(), [], 'a disabled box does not change');

  choice.setWhole(false);
  assert.deepEqual(ticked(), ['data', 'src'], 'the earlier choice is back');
  assert.ok(choice.boxes.every(b => !b.disabled));
  choice.setFolder('data', false);
  choice.setFolder('elsewhere', true);
  assert.deepEqual(choice.scope, ['src']);
});

test('the saved whole project starts with nothing ticked, and no folder is no scope', () => {
  const choice = new ScopeChoice();
  choice.load(['data', 'src'], []);
  assert.equal(choice.whole, true);
  assert.equal(choice.isValid, true);
  choice.setWhole(false);
  assert.deepEqual(choice.scope, []);
  assert.equal(choice.isValid, false);
  choice.setFolder('src', true);
  assert.equal(choice.isValid, true);
});
