import assert from 'node:assert/strict';
import { test } from 'node:test';

import { unifiedDiff } from '../src/diff';
import {
  applyLabel,
  checksBaseHash,
  diffLabel,
  diffTexts,
  placement,
  targetLabel
} from '../src/placement';
import { ISuggestion, parseSuggestion } from '../src/protocol';

function suggestion(mode: string, extra: Partial<ISuggestion> = {}) {
  const parsed = parseSuggestion({
    id: 's1',
    title: 'Explain the cell',
    mode,
    target: { path: 'a.ipynb', cell_index: 3, cell_id: 'c3' },
    original: 'df = load()',
    proposed: '## Loading\n\nReads the *raw* data.',
    ...extra
  });
  assert.ok(parsed);
  return parsed;
}

test('each mode places the change: replace, a code cell, a Markdown cell', () => {
  assert.deepEqual(placement('replace'), { kind: 'replace' });
  assert.deepEqual(placement('insert_after'), {
    kind: 'insert',
    cellType: 'code'
  });
  assert.deepEqual(placement('insert_markdown_after'), {
    kind: 'insert',
    cellType: 'markdown'
  });
});

test('a mode this version does not know is not applied as a replacement', () => {
  assert.equal(placement('insert_before'), null);
  assert.equal(placement(''), null);
});

test('only a replacement checks the target against its base hash', () => {
  const check = (mode: string) => {
    const place = placement(mode);
    assert.ok(place);
    return checksBaseHash(place);
  };
  assert.equal(check('replace'), true);
  assert.equal(check('insert_after'), false);
  assert.equal(check('insert_markdown_after'), false);
});

test('the mode parses as sent; a missing one is a replacement', () => {
  assert.equal(
    suggestion('insert_markdown_after').mode,
    'insert_markdown_after'
  );
  assert.equal(suggestion('replace', { mode: undefined }).mode, 'replace');
});

test('a new Markdown cell is labelled as one, below its target', () => {
  const md = suggestion('insert_markdown_after');
  assert.equal(targetLabel(md), 'a.ipynb, a new Markdown cell below cell 4');
  assert.equal(
    applyLabel(md),
    'Insert this text as a new Markdown cell (a.ipynb, a new Markdown cell below cell 4)'
  );
  assert.match(diffLabel(md), /Markdown cell, as Markdown source/);
  // The other modes read as before.
  assert.equal(
    targetLabel(suggestion('insert_after')),
    'a.ipynb, new cell after cell 4'
  );
  assert.equal(targetLabel(suggestion('replace')), 'a.ipynb, cell 4');
  assert.equal(
    applyLabel(suggestion('replace')),
    'Apply this change to a.ipynb, cell 4'
  );
  assert.equal(
    targetLabel(
      suggestion('insert_markdown_after', {
        target: { path: null, cell_index: null, cell_id: null }
      })
    ),
    'the notebook'
  );
});

test("an inserted cell's diff is all additions, the Markdown as its source", () => {
  const md = suggestion('insert_markdown_after');
  assert.deepEqual(diffTexts(md), { from: '', to: md.proposed });
  const lines = unifiedDiff(diffTexts(md).from, diffTexts(md).to, []);
  assert.ok(lines);
  assert.deepEqual(
    lines.filter(l => l.kind !== 'hunk').map(l => l.text),
    ['+## Loading', '+', '+Reads the *raw* data.']
  );
  assert.deepEqual(diffTexts(suggestion('insert_after')).from, '');
  // A replacement diffs against the target's text.
  assert.equal(diffTexts(suggestion('replace')).from, 'df = load()');
});
