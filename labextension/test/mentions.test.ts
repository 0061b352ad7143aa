import assert from 'node:assert/strict';
import { test } from 'node:test';

import { withoutParts } from '../src/context';
import {
  acceptCompletion,
  completions,
  distinctMentions,
  folderOf,
  ICompletionSources,
  mentionLabel,
  parseMentions,
  removeMention,
  typedMention
} from '../src/mentions';
import type { IChatContext } from '../src/protocol';

const SOURCES: ICompletionSources = {
  variables: [
    { name: 'df', type: 'pandas.DataFrame' },
    { name: 'orders_df', type: 'pandas.DataFrame' },
    { name: 'count', type: 'int' }
  ],
  cells: [
    { type: 'markdown', source: '# Orders' },
    { type: 'code', source: '\nimport pandas as pd' },
    { type: 'code', source: '' }
  ],
  files: [
    { path: 'etl.ipynb', type: 'notebook' },
    { path: 'src', type: 'directory' },
    { path: 'README.md', type: 'file' }
  ]
};

test('parseMentions tells variables, values, cells and files apart', () => {
  const tokens = parseMentions(
    '@df and @df:values, see @cell:4. Also @src/x.py and (@etl.ipynb).'
  );
  assert.deepEqual(tokens.map(mentionLabel), [
    '@df',
    '@df:values',
    '@cell:4',
    '@src/x.py',
    '@etl.ipynb'
  ]);
  assert.deepEqual(
    tokens.map(t => t.kind),
    ['variable', 'variable', 'cell', 'file', 'file']
  );
  const values = tokens[1];
  assert.ok(
    values.kind === 'variable' && values.values && values.name === 'df'
  );
  const text = '@df and @df:values, see @cell:4.';
  const cell = parseMentions(text)[2];
  assert.equal(text.slice(cell.start, cell.end), '@cell:4');
});

test('an @ inside a word, a bare @ and a folder are not mentions', () => {
  assert.deepEqual(parseMentions('mail me@example.com or a@b'), []);
  assert.deepEqual(parseMentions('x = a @ b'), []);
  assert.deepEqual(parseMentions('@src/ @cell:0 @9lives'), []);
  assert.equal(parseMentions('@./src/x.py')[0].kind, 'file');
  const file = parseMentions('@./src/x.py')[0];
  assert.ok(file.kind === 'file' && file.path === 'src/x.py');
});

test('distinctMentions keeps one chip per thing; removeMention drops every copy', () => {
  const text = 'compare @df with @df:values and @df again';
  assert.deepEqual(distinctMentions(parseMentions(text)).map(mentionLabel), [
    '@df'
  ]);
  assert.equal(removeMention(text, '@df'), 'compare with @df:values and again');
  assert.equal(removeMention('@cell:2 why?', '@cell:2'), ' why?');
});

test('typedMention finds the @word at the caret only', () => {
  assert.deepEqual(typedMention('look at @or', 11), { start: 8, query: 'or' });
  assert.deepEqual(typedMention('@', 1), { start: 0, query: '' });
  assert.equal(typedMention('look at @or now', 15), null);
  assert.equal(typedMention('me@ex', 5), null);
});

test('completions rank prefix matches first and number cells from 1', () => {
  const names = (query: string): string[] =>
    completions(query, SOURCES).map(item => item.label);
  assert.deepEqual(names('df'), ['df', 'orders_df']);
  assert.deepEqual(names('cell:'), ['cell:1', 'cell:2', 'cell:3']);
  assert.deepEqual(names('cell:2'), ['cell:2']);
  const cell = completions('cell:2', SOURCES)[0];
  assert.equal(cell.detail, 'code: import pandas as pd');
  assert.equal(completions('cell:3', SOURCES)[0].detail, 'code: (empty)');
  assert.deepEqual(names('etl'), ['etl.ipynb']);
  assert.equal(completions('sr', SOURCES)[0].insert, 'src/');
  assert.equal(completions('sr', SOURCES)[0].kind, 'folder');
  // A bare @: variables, one entry for the cells, the files; capped.
  assert.deepEqual(names(''), [
    'df',
    'orders_df',
    'count',
    'cell:N',
    'etl.ipynb',
    'src/',
    'README.md'
  ]);
  assert.deepEqual(acceptCompletion('@', 1, 0, completions('', SOURCES)[3]), {
    text: '@cell:',
    caret: 6
  });
  assert.equal(completions('', SOURCES, 4).length, 4);
});

test('completions inside a folder match the names it holds', () => {
  const sources: ICompletionSources = {
    variables: [{ name: 'src', type: 'str' }],
    cells: [],
    files: [
      { path: 'src/etl.py', type: 'file' },
      { path: 'src/load.py', type: 'file' }
    ]
  };
  assert.deepEqual(
    completions('src/e', sources).map(i => i.label),
    ['src/etl.py']
  );
  assert.equal(folderOf('src/e'), 'src');
  assert.equal(folderOf('sr'), '');
});

test('acceptCompletion replaces the typed word, adds a space, keeps the rest', () => {
  const item = completions('or', SOURCES)[0];
  assert.deepEqual(acceptCompletion('why @or fails', 7, 4, item), {
    text: 'why @orders_df fails',
    caret: 15
  });
  const folder = completions('sr', SOURCES)[0];
  assert.deepEqual(acceptCompletion('@sr', 3, 0, folder), {
    text: '@src/',
    caret: 5
  });
});

test('withoutParts drops exactly what each removed chip stood for', () => {
  const context: IChatContext = {
    notebook_path: 'etl.ipynb',
    kernel_id: 'k1',
    active_cell: 'df.head()',
    selection: 'df',
    cell_index: 3,
    cell_id: 'c3',
    error: 'KeyError',
    variables: [{ name: 'df', type: 'DataFrame', summary: '' }]
  };
  assert.deepEqual(withoutParts(context, new Set()), context);
  assert.deepEqual(withoutParts(context, new Set(['cell', 'error'])), {
    notebook_path: 'etl.ipynb',
    kernel_id: 'k1',
    variables: [{ name: 'df', type: 'DataFrame', summary: '' }]
  });
  assert.deepEqual(
    Object.keys(withoutParts(context, new Set(['notebook', 'variables']))),
    ['active_cell', 'selection', 'cell_index', 'cell_id', 'error']
  );
  assert.equal(context.error, 'KeyError'); // the original is left as it was
});

test('a typed name finds files further down, after the folder being typed', () => {
  const sources: ICompletionSources = {
    variables: [],
    cells: [],
    files: [
      { path: 'train.md', type: 'file' },
      { path: 'src', type: 'directory' }
    ],
    deepFiles: [
      { path: 'train.md', type: 'file' },
      { path: 'src/models/train.py', type: 'file' },
      { path: 'notebooks/retrain.ipynb', type: 'notebook' },
      { path: 'src/trainers', type: 'directory' },
      { path: 'src/app.py', type: 'file' }
    ]
  };
  assert.deepEqual(
    completions('train', sources).map(i => `${i.kind} ${i.insert}`),
    [
      'file train.md',
      // Name prefix before name inside; a folder is reached by typing its path.
      'file src/models/train.py',
      'notebook notebooks/retrain.ipynb'
    ]
  );
  // Within a folder: only what lies below it.
  const inSrc = {
    ...sources,
    files: [{ path: 'src/app.py', type: 'file' as const }]
  };
  assert.deepEqual(
    completions('src/tr', inSrc).map(i => i.insert),
    ['src/models/train.py']
  );
  // No name typed: the folder's listing only, not the whole tree.
  assert.ok(!completions('', sources).some(i => i.insert.includes('/models/')));
  assert.ok(
    !completions('src/', inSrc).some(i => i.insert.includes('/models/'))
  );
});
