import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  FOREIGN_SERVER,
  NOT_RUNNING,
  isSameServer,
  KernelAnswerModel,
  noticeAction,
  parseKernelAnswer
} from '../src/kernelanswer/model';

const SERVER = 'http://127.0.0.1:8888/';

function bundle(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    server_url: SERVER,
    turn_id: 't1',
    conversation_id: 'kernel-1',
    status: 'streaming',
    title: null,
    markdown: 'Use `df.dropna()`.',
    steps: [],
    citations: [],
    suggestions: [],
    notices: [],
    error: null,
    engine: null,
    model: null,
    usage: null,
    cost_usd: null,
    ...extra
  };
}

const here = () => new KernelAnswerModel(url => url === SERVER);

test('a version 1 bundle parses; list items it cannot read are dropped', () => {
  const parsed = parseKernelAnswer(
    bundle({
      title: 'Review of In [4]',
      steps: [
        {
          step: '1',
          title: 'Reading the error',
          status: 'finished',
          text: 'x'
        },
        { step: 2, status: 'started' },
        { title: 'no id' },
        'junk'
      ],
      citations: [
        { n: 1, path: 'notebooks/a.ipynb', kind: 'notebook', cell: 3 },
        { n: 'one', path: 'b.py' }
      ],
      suggestions: [
        {
          id: 's1',
          proposed: 'x = 1',
          target: { path: 'a.ipynb', cell_index: 0 }
        },
        { id: 's2' }
      ],
      notices: [{ code: 'no_index', message: 'No index yet.' }, { code: 1 }],
      error: 'not an object',
      engine: 'analysis',
      cost_usd: -1
    })
  );
  assert.ok(parsed.ok);
  const answer = parsed.answer;
  assert.equal(answer.title, 'Review of In [4]');
  assert.deepEqual(
    answer.steps.map(s => [s.step, s.title, s.status, s.text]),
    [
      ['1', 'Reading the error', 'finished', 'x'],
      ['2', 'Step 2', 'started', '']
    ]
  );
  assert.deepEqual(
    answer.citations.map(c => [c.n, c.path, c.cell]),
    [[1, 'notebooks/a.ipynb', 3]]
  );
  assert.deepEqual(
    answer.suggestions.map(s => s.id),
    ['s1']
  );
  assert.deepEqual(answer.notices, [
    { code: 'no_index', message: 'No index yet.' }
  ]);
  assert.equal(answer.error, null);
  assert.equal(answer.engine, 'analysis');
  assert.equal(answer.cost_usd, null);
});

test('bad bundles are refused, never thrown on; a higher version asks for an update', () => {
  for (const bad of [
    null,
    'text',
    [],
    42,
    bundle({ version: '1' }),
    bundle({ version: 0 }),
    bundle({ markdown: 5 }),
    bundle({ status: 'thinking' }),
    bundle({ turn_id: '' }),
    bundle({ turn_id: 7 })
  ]) {
    const parsed = parseKernelAnswer(bad);
    assert.deepEqual(parsed, { ok: false, reason: 'invalid' }, String(bad));
  }
  assert.deepEqual(parseKernelAnswer(bundle({ version: 99 })), {
    ok: false,
    reason: 'newer'
  });
  // Junk in optional fields reads as absent.
  const parsed = parseKernelAnswer(
    bundle({
      server_url: 'javascript:alert(1)',
      title: { html: '<b>' },
      steps: 'x',
      citations: { n: 1 },
      suggestions: null,
      engine: 3
    })
  );
  assert.ok(parsed.ok);
  assert.equal(parsed.answer.server_url, null);
  assert.equal(parsed.answer.title, null);
  assert.deepEqual(parsed.answer.steps, []);
  assert.deepEqual(parsed.answer.citations, []);
  assert.equal(parsed.answer.engine, null);
});

test('this server: trailing slashes, relative base URLs and loopback names', () => {
  const page = 'http://localhost:8888/lab/tree/a.ipynb';
  assert.ok(isSameServer('http://127.0.0.1:8888', '/', page));
  assert.ok(
    isSameServer('http://localhost:8888/', 'http://localhost:8888/', page)
  );
  assert.ok(
    isSameServer(
      'http://127.0.0.1:8888/user/ann/',
      '/user/ann',
      'http://127.0.0.1:8888/user/ann/lab'
    )
  );
  assert.ok(!isSameServer('http://127.0.0.1:8889/', '/', page));
  assert.ok(
    !isSameServer('http://127.0.0.1:8888/user/bob/', '/user/ann/', page)
  );
  assert.ok(!isSameServer('https://hub.example.org/', '/', page));
  assert.ok(!isSameServer(null, '/', page));
});

test('the status line follows the status', () => {
  const model = here();
  assert.deepEqual(model.statusLine, { kind: 'none', text: '' });
  model.update(bundle({ status: 'waiting', markdown: '' }));
  assert.deepEqual(model.statusLine, { kind: 'thinking', text: 'Thinking…' });
  model.update(bundle({ status: 'streaming' }));
  assert.deepEqual(model.statusLine, { kind: 'none', text: '' });
  model.update(
    bundle({
      status: 'error',
      error: {
        code: 'rate_limited',
        message: 'Too many requests.',
        retry_after: 2.2
      }
    })
  );
  assert.deepEqual(model.statusLine, {
    kind: 'error',
    text: 'Too many requests. (retry in 3 s)'
  });
  model.update(bundle({ status: 'error', error: null }));
  assert.deepEqual(model.statusLine, {
    kind: 'error',
    text: 'The answer failed.'
  });
  model.update(bundle({ status: 'stopped' }));
  assert.deepEqual(model.statusLine, { kind: 'stopped', text: 'Stopped' });
  model.update(
    bundle({ status: 'done', model: 'openai/x', engine: 'analysis' })
  );
  assert.deepEqual(model.statusLine, {
    kind: 'done',
    text: 'openai/x · analysis engine'
  });
});

test('Stop shows while the answer runs, says Stopping… until the status changes', () => {
  const model = here();
  model.update(bundle({ status: 'waiting' }));
  assert.deepEqual(model.stopButton, {
    label: 'Stop',
    disabled: false,
    reason: null
  });
  assert.ok(model.startStopping());
  assert.ok(model.stopping);
  assert.equal(model.stopButton?.label, 'Stopping…');
  assert.equal(model.stopButton?.disabled, true);
  assert.ok(!model.startStopping(), 'a second click sends nothing');
  // The same status again (more text) keeps it stopping.
  model.update(bundle({ status: 'waiting', markdown: 'more' }));
  assert.ok(model.stopping);
  model.update(bundle({ status: 'streaming' }));
  assert.ok(!model.stopping);
  assert.equal(model.stopButton?.label, 'Stop');
  assert.ok(model.startStopping());
  model.stopFailed();
  assert.equal(model.stopButton?.label, 'Stop');
  for (const status of ['done', 'error', 'stopped']) {
    model.update(bundle({ status }));
    assert.equal(model.stopButton, null, status);
    assert.ok(!model.startStopping());
  }
});

test('a streaming answer the server no longer runs: Stop goes, the status says why', () => {
  const model = here();
  model.update(bundle({ status: 'streaming', turn_id: 't1' }));
  assert.ok(model.startStopping());
  model.markNotRunning();
  assert.equal(model.stopButton === null, true, 'no Stop any more');
  assert.ok(!model.running);
  assert.deepEqual(model.statusLine, { kind: 'stopped', text: NOT_RUNNING });
  // A new turn in the same output is live again.
  model.update(bundle({ status: 'streaming', turn_id: 't2' }));
  assert.ok(model.running);
  assert.equal(model.stopButton?.label, 'Stop');
});

test('an answer from another server: Stop and Apply are disabled and say why', () => {
  const model = here();
  model.update(bundle({ server_url: 'http://127.0.0.1:9999/' }));
  assert.ok(!model.fromThisServer);
  assert.deepEqual(model.stopButton, {
    label: 'Stop',
    disabled: true,
    reason: FOREIGN_SERVER
  });
  assert.ok(!model.startStopping());
  assert.equal(model.applyBlockedReason, FOREIGN_SERVER);
  model.update(bundle());
  assert.ok(model.fromThisServer);
  assert.equal(model.applyBlockedReason, null);
});

test('an unreadable update replaces the answer and says why', () => {
  const model = here();
  model.update(bundle());
  assert.ok(model.answer);
  const parsed = model.update(bundle({ version: 99 }));
  assert.equal(parsed.ok, false);
  assert.equal(model.answer, null);
  assert.equal(model.unreadable, 'newer');
  assert.equal(model.stopButton, null);
  model.update(bundle({ markdown: 3 }));
  assert.equal(model.unreadable, 'invalid');
  model.update(bundle());
  assert.equal(model.unreadable, null);
});

test("a notice's button comes from its code, for this server's answers only", () => {
  assert.deepEqual(noticeAction('no_index', true), {
    command: 'rubberduck:index-project',
    label: 'Index this project'
  });
  assert.equal(noticeAction('no_index', false), undefined);
  assert.equal(noticeAction('no_model', true), undefined);
  assert.equal(noticeAction('__proto__', true), undefined);
  assert.equal(noticeAction('toString', true), undefined);
});
