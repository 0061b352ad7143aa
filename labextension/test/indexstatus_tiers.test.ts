import assert from 'node:assert/strict';
import { test } from 'node:test';

import { describeStatus, parseIndexStatus } from '../src/indexstatus/model';

/** A GET body of /rubberduck/api/index during and after progressive indexing. */
function body(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    state: 'indexing',
    activity: 'indexing',
    stopping: false,
    done: 66,
    total: 66,
    scope: [],
    files: 66,
    chunks: 1500,
    error: null,
    last_report: null,
    progress: { phase: 'improving', files_done: 66, files_total: 66 },
    tiers: {
      full: { embedder: 'minilm', chunks: 600 },
      static: { embedder: 'model2vec', chunks: 900, state: 'ready' },
      keywords: { chunks: 0 }
    },
    searchable: true,
    quality: 'static',
    improving: 0.4,
    ...extra
  };
}

test('the second tier: searchable, improving with a share', () => {
  const status = parseIndexStatus(body({}));
  assert.ok(status);
  assert.equal(status.phase, 'improving');
  assert.equal(status.quality, 'static');
  assert.equal(status.improving, 0.4);
  const { label, description } = describeStatus(status);
  assert.equal(label, 'Index: searchable · improving 40%');
  assert.match(description, /searchable/);
  assert.match(description, /40% of the chunks/);
});

test('the first tier still running shows file progress', () => {
  const status = parseIndexStatus(
    body({
      done: 10,
      progress: { phase: 'indexing' },
      quality: 'static',
      improving: 0
    })
  );
  assert.ok(status);
  assert.equal(describeStatus(status).label, 'Indexing 10/66');
});

test('full quality: no improving note; a stop between tiers says how far', () => {
  const done = parseIndexStatus(
    body({
      state: 'idle',
      activity: 'watching',
      quality: 'full',
      improving: null,
      progress: null
    })
  );
  assert.ok(done);
  assert.equal(done.phase, null);
  assert.equal(describeStatus(done).label, 'Index: 66 files');
  const partial = parseIndexStatus(
    body({
      state: 'idle',
      activity: 'idle',
      quality: 'keywords',
      improving: 0.25,
      progress: null
    })
  );
  assert.ok(partial);
  assert.equal(describeStatus(partial).label, 'Index: 66 files · 25% full');
  assert.match(describeStatus(partial).description, /by keywords/);
});

test('an old server without tiers parses as before', () => {
  const status = parseIndexStatus({ activity: 'idle', files: 3, chunks: 9 });
  assert.ok(status);
  assert.equal(status.quality, null);
  assert.equal(status.improving, null);
  assert.equal(status.searchable, false);
  assert.equal(describeStatus(status).label, 'Index: 3 files');
});
