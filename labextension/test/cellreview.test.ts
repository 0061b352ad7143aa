import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  CellReviewModel,
  countBySeverity,
  findingOrigin,
  NdjsonSplitter,
  NotebookReviewRun,
  parseCellReview,
  parseCrossCellFindings,
  parseFinding,
  parseNotebookStaticReview,
  severityCountsText
} from '../src/cellreview/model';

const SERVER_ANSWER = {
  source_hash: 'abc',
  findings: [
    {
      source: 'ast',
      code: 'RD103',
      message: '`xs.sort(...)` returns None',
      line: 2,
      col: 1,
      end_line: 2,
      severity: 'warning',
      fix: 'call it without assigning',
      replacement: 'xs = [2, 1]\nxs.sort()'
    },
    {
      code: 'F821',
      message: 'Undefined name `df`',
      line: 'x',
      severity: 'bad'
    },
    'not a finding'
  ]
};

test('parseCellReview keeps real findings and defaults bad fields', () => {
  const review = parseCellReview(SERVER_ANSWER);
  assert.equal(review.sourceHash, 'abc');
  assert.equal(review.findings.length, 2);
  assert.equal(review.findings[0].replacement, 'xs = [2, 1]\nxs.sort()');
  assert.equal(review.findings[1].line, 1);
  assert.equal(review.findings[1].severity, 'warning');
  assert.equal(review.findings[1].replacement, null);
  assert.deepEqual(parseCellReview(null).findings, []);
  assert.equal(
    parseFinding({ code: 'NB101', message: 'm', related_cell: 3 }, 'notebook')
      ?.relatedCell,
    3
  );
});

test('a review goes stale when the cell changes and fresh when it changes back', () => {
  const model = new CellReviewModel();
  const seen: string[] = [];
  model.changed.connect((_, id) => seen.push(id));
  const { findings } = parseCellReview(SERVER_ANSWER);
  model.setStatic('c1', 'xs = [2, 1]\nxs = xs.sort()', 'abc', findings);
  assert.equal(model.get('c1')?.stale, false);
  model.sourceChanged('c1', 'xs = [2, 1]\nxs = xs.sort()');
  assert.deepEqual(seen, ['c1']); // no change, no signal
  model.sourceChanged('c1', 'xs = [2, 1]\nxs = xs.sort()  # edited');
  assert.equal(model.get('c1')?.stale, true);
  model.sourceChanged('c1', 'xs = [2, 1]\nxs = xs.sort()');
  assert.equal(model.get('c1')?.stale, false);
  model.sourceChanged('unknown', 'x');
  assert.equal(model.get('unknown'), undefined);
});

test('a fix is accepted only on a fresh review whose hash matches the cell', () => {
  const model = new CellReviewModel();
  const { findings } = parseCellReview(SERVER_ANSWER);
  model.setStatic('c1', 'src', 'abc', findings);
  const [withFix, withoutFix] = model.get('c1')!.findings;
  assert.equal(model.canAccept('c1', withFix, 'abc'), true);
  assert.equal(model.canAccept('c1', withoutFix, 'abc'), false);
  assert.equal(model.canAccept('c1', withFix, 'other-hash'), false);
  model.sourceChanged('c1', 'src edited');
  assert.equal(model.canAccept('c1', withFix, 'abc'), false);
  // A finding of an older review is not accepted after a new one.
  model.setStatic('c1', 'src', 'abc', parseCellReview(SERVER_ANSWER).findings);
  assert.equal(model.canAccept('c1', withFix, 'abc'), false);
});

test('cross-cell findings sit beside the static ones of the same source', () => {
  const model = new CellReviewModel();
  const nb = parseFinding(
    { code: 'NB101', message: 'read before', line: 1 },
    'notebook'
  )!;
  model.setNotebookFindings('c1', 'print(df)', 'h', [nb]);
  model.setStatic(
    'c1',
    'print(df)',
    'h',
    parseCellReview(SERVER_ANSWER).findings
  );
  assert.deepEqual(
    model.get('c1')!.findings.map(f => [f.code, f.scope]),
    [
      ['RD103', 'cell'],
      ['F821', 'cell'],
      ['NB101', 'notebook']
    ]
  );
  model.setNotebookFindings('c1', 'print(df)', 'h', []);
  assert.deepEqual(
    model.get('c1')!.findings.map(f => f.code),
    ['RD103', 'F821']
  );
  // Another source: the old findings are gone.
  model.setStatic('c1', 'print(1)', 'h2', []);
  assert.deepEqual(model.get('c1')!.findings, []);
  assert.deepEqual(countBySeverity(parseCellReview(SERVER_ANSWER).findings), {
    error: 0,
    warning: 2,
    info: 0
  });
});

test("the notebook's findings keep the model's review of the same source; a static review restarts it", () => {
  const model = new CellReviewModel();
  const nb = parseFinding({ code: 'NB101', message: 'm' }, 'notebook')!;
  model.setStatic('c1', 'x', 'h', []);
  model.modelStarted('c1');
  model.modelChunk('c1', 'Fine.');
  model.modelEnded('c1');
  model.setNotebookFindings('c1', 'x', 'h', [nb]);
  assert.equal(model.get('c1')?.modelText, 'Fine.');
  assert.equal(model.get('c1')?.modelState, 'done');
  // A finding given as a cell's own becomes the notebook's.
  const own = parseFinding({ code: 'F1', message: 'm' })!;
  model.setNotebookFindings('c1', 'x', 'h', [own]);
  assert.deepEqual(
    model.get('c1')!.findings.map(f => f.scope),
    ['notebook']
  );
  model.setNotebookFindings('c1', 'y', 'h2', [nb]);
  assert.equal(model.get('c1')?.modelText, '', 'another source: gone');
  model.setNotebookFindings('c1', 'y', 'h2', [nb]);
  model.modelStarted('c1');
  model.modelChunk('c1', 'Again.');
  model.setStatic('c1', 'y', 'h2', []);
  assert.equal(model.get('c1')?.modelState, 'idle');
  assert.equal(
    model.get('c1')?.findings.length,
    1,
    'the notebook finding stays'
  );
});

test('severity counts read most severe first, plural when more than one', () => {
  const finding = (severity: string) =>
    parseFinding({ code: 'X', message: 'm', severity })!;
  assert.equal(
    severityCountsText([
      finding('info'),
      finding('warning'),
      finding('error'),
      finding('error')
    ]),
    '2 errors, 1 warning, 1 info'
  );
  assert.equal(severityCountsText([]), '');
  assert.equal(severityCountsText([finding('bogus')]), '1 warning');
});

test('the model review streams only while it is streaming', () => {
  const model = new CellReviewModel();
  model.setStatic('c1', 'x', 'h', []);
  model.modelChunk('c1', 'ignored');
  model.modelStarted('c1');
  model.modelChunk('c1', 'Looks ');
  model.modelChunk('c1', 'fine.');
  model.modelEnded('c1');
  model.modelChunk('c1', ' late');
  assert.equal(model.get('c1')?.modelText, 'Looks fine.');
  assert.equal(model.get('c1')?.modelState, 'done');
  model.modelStarted('c1');
  model.modelEnded('c1', 'no model');
  assert.equal(model.get('c1')?.modelState, 'error');
  assert.equal(model.get('c1')?.modelError, 'no model');
});

test('a notebook run reports progress and cancel stops before the next cell', async () => {
  const reviewed: number[] = [];
  const progress: string[] = [];
  const run: NotebookReviewRun<number> = new NotebookReviewRun(
    [0, 1, 2, 3],
    async n => {
      reviewed.push(n);
      if (n === 1) {
        run.cancel();
      }
    }
  );
  run.progress.connect((_, p) => progress.push(`${p.done}/${p.total}`));
  assert.equal(await run.run(), 2);
  assert.deepEqual(reviewed, [0, 1]);
  assert.deepEqual(progress, ['0/4', '1/4', '2/4']);
  assert.equal(run.cancelled, true);
});

test('a run of sized items counts cells: total is the sum, done grows by each size', async () => {
  const slices = [
    { start: 0, stop: 25 },
    { start: 25, stop: 50 },
    { start: 50, stop: 53 }
  ];
  const progress: string[] = [];
  const run = new NotebookReviewRun(
    slices,
    async () => {},
    s => s.stop - s.start
  );
  assert.equal(run.total, 53);
  run.progress.connect((_, p) => progress.push(`${p.done}/${p.total}`));
  assert.equal(await run.run(), 53);
  assert.deepEqual(progress, ['0/53', '25/53', '50/53', '53/53']);
  assert.equal(run.done, 53);
  assert.equal(run.cancelled, false);
  assert.equal(new NotebookReviewRun([], async () => {}).total, 0);
});

test('cancel aborts the sized item under way and starts no other', async () => {
  const started: number[] = [];
  let signalOfSecond: AbortSignal | null = null;
  const run: NotebookReviewRun<number> = new NotebookReviewRun(
    [0, 1, 2],
    (n, signal) => {
      started.push(n);
      if (n === 0) {
        return Promise.resolve();
      }
      signalOfSecond = signal;
      // A request that only ends when it is aborted, as fetch rejects then.
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('aborted')))
      );
    },
    () => 25
  );
  const ran = run.run();
  await new Promise(resolve => setImmediate(resolve));
  assert.deepEqual(started, [0, 1]);
  run.cancel();
  assert.equal(await ran, 25, 'the aborted item is not counted');
  assert.deepEqual(started, [0, 1]);
  assert.equal(signalOfSecond!.aborted, true);
  assert.equal(run.cancelled, true);
  assert.equal(run.done, 25);
});

test('a failure that is not a cancel still rejects the run', async () => {
  const run = new NotebookReviewRun([0], async () => {
    throw new Error('busy');
  });
  await assert.rejects(run.run(), /busy/);
});

test("the notebook's static answer: each entry as a cell's review, cross-cell findings on their cells", () => {
  const answer = parseNotebookStaticReview({
    cells: 3,
    findings: [
      { cell: 4, code: 'NB101', message: 'read before', related_cell: 9 },
      { cell: 'x', code: 'NB102', message: 'no cell' },
      { cell: 2, message: 'no code' }
    ],
    static: [
      { index: 2, ...SERVER_ANSWER },
      { index: 4, source_hash: 'def', findings: [] },
      { source_hash: 'no index', findings: [] },
      null
    ]
  });
  assert.deepEqual(
    answer.cells.map(c => [c.index, c.review.sourceHash]),
    [
      [2, 'abc'],
      [4, 'def']
    ]
  );
  assert.deepEqual(
    answer.cells[0].review,
    parseCellReview(SERVER_ANSWER),
    'the same parser as POST /review/cell'
  );
  assert.equal(answer.crossCell.length, 1);
  assert.equal(answer.crossCell[0].cell, 4);
  assert.equal(answer.crossCell[0].finding.scope, 'notebook');
  assert.equal(answer.crossCell[0].finding.relatedCell, 9);
  assert.deepEqual(parseNotebookStaticReview('nonsense'), {
    cells: [],
    crossCell: []
  });
  assert.deepEqual(parseCrossCellFindings(undefined), []);
});

test('NdjsonSplitter hands out whole lines only', () => {
  const split = new NdjsonSplitter();
  assert.deepEqual(split.push('{"a":1}\n{"b"'), [{ a: 1 }]);
  assert.deepEqual(split.push(':2}\n\n'), [{ b: 2 }]);
  assert.deepEqual(split.push('{"c":3}'), []);
  assert.deepEqual(split.flush(), [{ c: 3 }]);
});

test("a plugin's finding keeps its plugin's name; the server's own checks have none", () => {
  const review = parseCellReview({
    source_hash: 'h',
    findings: [
      {
        source: 'plugin',
        plugin: 'pandas-review',
        code: 'PD001',
        message: 'chained indexing',
        line: 2,
        severity: 'warning'
      },
      { source: 'plugin', code: 'PD002', message: 'no name', line: 1 },
      { source: 'ruff', plugin: 'imposter', code: 'F401', message: 'm' }
    ]
  });
  const [named, unnamed, own] = review.findings;
  assert.equal(named.source, 'plugin');
  assert.equal(named.plugin, 'pandas-review');
  assert.equal(findingOrigin(named), 'pandas-review');
  assert.equal(unnamed.plugin, undefined);
  assert.equal(findingOrigin(unnamed), 'plugin');
  // Only a plugin's finding names one: anything else is RubberDuck's own.
  assert.equal(own.plugin, undefined);
  assert.equal(findingOrigin(own), null);
  assert.equal(
    'plugin' in parseFinding({ code: 'F1', message: 'm', source: 'ast' })!,
    false
  );
});

test("a plugin's finding counts and goes stale like any other", () => {
  const model = new CellReviewModel();
  const finding = parseFinding({
    source: 'plugin',
    plugin: 'pandas-review',
    code: 'PD001',
    message: 'm',
    severity: 'error'
  })!;
  model.setStatic('c1', 'df[a][b] = 1', 'h', [finding]);
  assert.equal(severityCountsText(model.get('c1')!.findings), '1 error');
  model.sourceChanged('c1', 'df.loc[a, b] = 1');
  assert.equal(model.get('c1')!.stale, true);
  assert.equal(model.get('c1')!.findings[0].plugin, 'pandas-review');
});
