import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ListNavigation } from '../src/listbox';

test('arrows wrap, Home and End jump, and the highlight follows', () => {
  const nav = new ListNavigation();
  nav.reset(3);
  const walk = [
    'ArrowDown',
    'ArrowDown',
    'ArrowDown',
    'ArrowUp',
    'End',
    'Home'
  ];
  const seen = walk.map(key => {
    assert.equal(nav.key(key), 'move', key);
    return nav.active;
  });
  assert.deepEqual(seen, [1, 2, 0, 2, 2, 0]);
});

test('Enter and Tab take the option, Shift lets them through, Escape closes', () => {
  const nav = new ListNavigation();
  nav.reset(2);
  nav.key('ArrowDown');
  assert.equal(nav.key('Enter'), 'accept');
  assert.equal(nav.key('Tab'), 'accept');
  assert.equal(nav.key('Enter', true), null, 'Shift+Enter adds a line');
  assert.equal(nav.key('Tab', true), null);
  assert.equal(nav.key('Escape'), 'close');
  assert.equal(nav.key('a'), null, 'typing goes to the box');
  assert.equal(nav.key('ArrowLeft'), null, 'the caret still moves');
  assert.equal(nav.active, 1, 'keys that are not moves leave the highlight');
});

test('a new list keeps the highlighted option when it is still there', () => {
  const nav = new ListNavigation();
  nav.reset(5);
  nav.key('End');
  nav.reset(3, 2);
  assert.equal(nav.active, 2);
  nav.reset(3, 7);
  assert.equal(nav.active, 0, 'gone: back to the first');
  nav.reset(3, -1);
  assert.equal(nav.active, 0);
  nav.reset(0);
  assert.equal(nav.key('ArrowDown'), null, 'an empty list takes no key');
});
