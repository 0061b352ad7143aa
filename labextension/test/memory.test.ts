import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConversationMemory } from '../src/memory';
import type { IConversationSummary } from '../src/protocol';

/** Local storage as a map, or one that refuses every write (full, or disabled). */
class FakeStorage {
  items = new Map<string, string>();
  refuse = false;
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    if (this.refuse) {
      throw new Error('QuotaExceededError');
    }
    this.items.set(key, value);
  }
}

const listed = (...ids: string[]): IConversationSummary[] =>
  ids.map(id => ({
    id,
    title: id,
    context_type: 'question',
    created_at: 0,
    updated_at: 0,
    task: null,
    n_messages: 1,
    last_question: null
  }));

test('the current conversation is remembered per server', () => {
  const storage = new FakeStorage();
  const one = new ConversationMemory('http://a/', storage);
  const other = new ConversationMemory('http://b/', storage);
  assert.equal(one.current, null);
  one.current = 'c1';
  other.current = 'c2';
  assert.equal(new ConversationMemory('http://a/', storage).current, 'c1');
  assert.equal(other.current, 'c2');
});

test("a notebook's conversation counts while the server still lists it", () => {
  const memory = new ConversationMemory('http://a/', new FakeStorage());
  memory.rememberNotebook('etl.ipynb', 'c1');
  // Not listed yet: not held against it.
  assert.equal(memory.notebookHome('etl.ipynb', []), 'c1');
  assert.equal(memory.notebookHome('etl.ipynb', listed('c1', 'c2')), 'c1');
  // Deleted since: no home any more.
  assert.equal(memory.notebookHome('etl.ipynb', listed('c2')), null);
  assert.equal(memory.notebookHome('other.ipynb', listed('c1')), null);
  memory.rememberNotebook('etl.ipynb', 'c2');
  assert.equal(memory.notebookHome('etl.ipynb', listed('c2')), 'c2');
});

test('storage that is full, broken or missing remembers nothing and throws nothing', () => {
  const storage = new FakeStorage();
  storage.refuse = true;
  const memory = new ConversationMemory('http://a/', storage);
  memory.current = 'c1';
  memory.rememberNotebook('etl.ipynb', 'c1');
  assert.equal(memory.current, null);
  assert.equal(memory.notebookHome('etl.ipynb', []), null);
  storage.refuse = false;
  storage.setItem('rubberduck:notebook-conversations:http://a/', '{not json');
  assert.equal(memory.notebookHome('etl.ipynb', []), null);
  const none = new ConversationMemory('http://a/', null);
  none.current = 'c1';
  assert.equal(none.current, null);
});
