import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  approvalScope,
  ApprovalsModel,
  needsRun
} from '../src/agent/approvals';
import { runResult, notRun, trimOutput } from '../src/agent/runresult';
import { cellFocus, prettyArguments, stepResultText } from '../src/agent/steps';
import {
  checksBaseHash,
  diffTexts,
  placement,
  targetLabel
} from '../src/placement';
import {
  ClientFrame,
  IApprovalFrame,
  MAX_RUN_OUTPUT_CHARS,
  MAX_RUN_OUTPUTS,
  parseServerFrame,
  parseSuggestion
} from '../src/protocol';

function approval(extra: Partial<IApprovalFrame> = {}): IApprovalFrame {
  return {
    type: 'approval',
    id: 't1',
    approval_id: 'a1',
    kind: 'run',
    title: 'Run cell 2',
    path: 'nb.ipynb',
    cell_index: 2,
    cell_id: null,
    source: 'print(1)',
    suggestion_ids: [],
    auto: false,
    ...extra
  };
}

function model(): { approvals: ApprovalsModel; sent: ClientFrame[] } {
  const sent: ClientFrame[] = [];
  const approvals = new ApprovalsModel(frame => {
    sent.push(frame);
    return true;
  });
  return { approvals, sent };
}

test('an approval waits for the user, then Run sends approve and the run result', () => {
  const { approvals, sent } = model();
  const { entry, runNow } = approvals.offer(approval());
  assert.equal(runNow, false);
  assert.equal(entry.state, 'pending');
  assert.deepEqual(sent, []);
  assert.equal(approvals.decide('a1', 'allow'), true);
  assert.equal(entry.state, 'running');
  approvals.finish('a1', runResult([], 'ok', 3));
  assert.equal(entry.state, 'done');
  assert.deepEqual(sent, [
    { type: 'approve', v: 1, id: 't1', approval_id: 'a1', decision: 'allow' },
    {
      type: 'run_result',
      v: 1,
      id: 't1',
      approval_id: 'a1',
      status: 'ok',
      execution_count: 3,
      outputs: [],
      error: null
    }
  ]);
  // A second decision on an answered approval does nothing.
  assert.equal(approvals.decide('a1', 'deny'), false);
  assert.equal(sent.length, 2);
});

test("Don't run sends deny and runs nothing", () => {
  const { approvals, sent } = model();
  approvals.offer(approval());
  assert.equal(approvals.decide('a1', 'deny'), false);
  assert.equal(approvals.get('a1')?.state, 'denied');
  approvals.finish('a1', runResult([], 'ok', 1)); // not running: ignored
  assert.deepEqual(
    sent.map(f => f.type),
    ['approve']
  );
});

test("Run all in this turn runs the turn's later approvals without asking, not another turn's", () => {
  const { approvals, sent } = model();
  approvals.offer(approval());
  approvals.decide('a1', 'allow_turn');
  const later = approvals.offer(approval({ approval_id: 'a2' }));
  assert.equal(later.runNow, true);
  assert.equal(later.entry.state, 'running');
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1], {
    type: 'approve',
    v: 1,
    id: 't1',
    approval_id: 'a2',
    decision: 'allow'
  });
  const other = approvals.offer(approval({ id: 't2', approval_id: 'b1' }));
  assert.equal(other.runNow, false);
  // The turn's end forgets the permission.
  approvals.endTurn('t1');
  assert.equal(approvals.offer(approval({ approval_id: 'a3' })).runNow, false);
});

test('an auto approval (allowed for the conversation) runs at once and sends no approve', () => {
  const { approvals, sent } = model();
  const { entry, runNow } = approvals.offer(approval({ auto: true }));
  assert.equal(runNow, true);
  assert.equal(entry.state, 'running');
  assert.deepEqual(sent, []);
  approvals.finish('a1', notRun('CellChanged', 'changed'));
  assert.equal(sent.length, 1);
  assert.equal((sent[0] as { status: string }).status, 'aborted');
});

test('a replayed approval (after a resume) is the same entry and never runs twice', () => {
  const { approvals } = model();
  approvals.offer(approval({ auto: true }));
  const again = approvals.offer(approval({ auto: true }));
  assert.equal(again.runNow, false);
});

test('approval.closed clears a pending card; Stop closes what still waits', () => {
  const { approvals } = model();
  const changes: string[] = [];
  approvals.changed.connect((_, e) =>
    changes.push(`${e.frame.approval_id}:${e.state}`)
  );
  approvals.offer(approval());
  approvals.offer(approval({ approval_id: 'a2' }));
  approvals.close('a1', 'answered');
  assert.equal(approvals.get('a1')?.state, 'closed');
  assert.equal(approvals.get('a1')?.reason, 'answered');
  assert.deepEqual(
    approvals.pending('t1').map(e => e.frame.approval_id),
    ['a2']
  );
  approvals.endTurn('t1', 'cancelled');
  assert.equal(approvals.get('a2')?.state, 'closed');
  assert.deepEqual(approvals.pending('t1'), []);
  assert.deepEqual(changes, [
    'a1:pending',
    'a2:pending',
    'a1:closed',
    'a2:closed'
  ]);
  // A closed approval cannot be decided any more.
  assert.equal(approvals.decide('a2', 'allow'), false);
});

test('a run result is plain text, trimmed per output and in count, the error apart', () => {
  const long = 'x'.repeat(MAX_RUN_OUTPUT_CHARS + 10);
  const outputs = [
    { output_type: 'stream', name: 'stdout', text: ['a\n', 'b\n'] },
    {
      output_type: 'execute_result',
      data: { 'text/plain': long },
      execution_count: 2
    },
    { output_type: 'display_data', data: { 'image/png': 'iVBOR' } },
    {
      output_type: 'error',
      ename: 'NameError',
      evalue: "name 'y' is not defined",
      traceback: ['\u001b[0;31mNameError\u001b[0m: boom']
    }
  ];
  const result = runResult(outputs, 'error', 2);
  assert.equal(result.status, 'error');
  assert.equal(result.execution_count, 2);
  assert.deepEqual(result.outputs[0], {
    output_type: 'stream',
    text: 'a\nb\n'
  });
  assert.equal(result.outputs[1].output_type, 'execute_result');
  assert.ok(
    result.outputs[1].text.startsWith('x'.repeat(MAX_RUN_OUTPUT_CHARS))
  );
  assert.ok(result.outputs[1].text.endsWith('[10 more characters]'));
  assert.deepEqual(result.outputs[2], {
    output_type: 'display_data',
    text: '[image/png output]'
  });
  assert.deepEqual(result.error, {
    ename: 'NameError',
    evalue: "name 'y' is not defined",
    traceback: ['NameError: boom']
  });
  const many = Array.from({ length: 30 }, () => ({
    output_type: 'stream',
    text: 'l'
  }));
  assert.equal(runResult(many, 'ok', 1).outputs.length, MAX_RUN_OUTPUTS);
  assert.equal(trimOutput('short'), 'short');
  assert.equal(runResult([], 'aborted', null).status, 'aborted');
});

test('a tool step: pretty arguments, its result without the repeated arguments, its cell', () => {
  assert.equal(prettyArguments({}), '(no arguments)');
  assert.equal(prettyArguments({ cell: 3 }), '{\n  "cell": 3\n}');
  assert.equal(
    stepResultText('Arguments: {"cell":3}\n\nResult:\nx = 1'),
    'Result:\nx = 1'
  );
  assert.equal(stepResultText('plain reasoning'), 'plain reasoning');
  assert.deepEqual(
    cellFocus({
      name: 'read_cell',
      arguments: {},
      cell_index: 3,
      path: 'a/nb.ipynb'
    }),
    { path: 'a/nb.ipynb', index: 2 }
  );
  assert.equal(
    cellFocus({
      name: 'read_file',
      arguments: {},
      cell_index: null,
      path: 'a.py'
    }),
    null
  );
  assert.equal(cellFocus(undefined), null);
});

test('step frames carry their tool; approval frames parse and bad ones are dropped', () => {
  const step = parseServerFrame(
    JSON.stringify({
      type: 'step',
      id: 't1',
      step: 'tool-1',
      title: 'read_cell(cell=2)',
      status: 'started',
      tool: {
        name: 'read_cell',
        arguments: { cell: 2 },
        cell_index: 2,
        path: 'nb.ipynb'
      }
    })
  );
  assert.deepEqual(step && step.type === 'step' && step.tool, {
    name: 'read_cell',
    arguments: { cell: 2 },
    cell_index: 2,
    path: 'nb.ipynb'
  });
  const plain = parseServerFrame(
    JSON.stringify({ type: 'step', id: 't1', step: 's', status: 'finished' })
  );
  assert.ok(plain && plain.type === 'step' && plain.tool === undefined);
  const frame = parseServerFrame(
    JSON.stringify({
      type: 'approval',
      id: 't1',
      approval_id: 'a1',
      kind: 'run',
      title: 'Run cell 4',
      path: 'nb.ipynb',
      cell_index: 4,
      cell_id: 'c4',
      source: 'x',
      suggestion_ids: ['s1', 7],
      auto: true
    })
  );
  assert.deepEqual(frame, {
    type: 'approval',
    id: 't1',
    approval_id: 'a1',
    kind: 'run',
    title: 'Run cell 4',
    path: 'nb.ipynb',
    cell_index: 4,
    cell_id: 'c4',
    source: 'x',
    suggestion_ids: ['s1'],
    auto: true
  });
  assert.equal(
    parseServerFrame(
      JSON.stringify({ type: 'approval', id: 't1', kind: 'run' })
    ),
    null
  );
  assert.deepEqual(
    parseServerFrame(
      JSON.stringify({
        type: 'approval.closed',
        id: 't1',
        approval_id: 'a1',
        reason: 'timeout'
      })
    ),
    { type: 'approval.closed', id: 't1', approval_id: 'a1', reason: 'timeout' }
  );
});

test('a delete suggestion removes its cell: a checked hash, all removals, its label', () => {
  const s = parseSuggestion({
    id: 's1',
    mode: 'delete',
    target: { path: 'nb.ipynb', cell_index: 3, cell_id: null },
    original: 'old = 1',
    proposed: '',
    auto_apply: true
  });
  assert.ok(s);
  assert.equal(s.auto_apply, true);
  const place = placement('delete');
  assert.deepEqual(place, { kind: 'delete' });
  assert.equal(place && checksBaseHash(place), true);
  assert.deepEqual(diffTexts(s), { from: 'old = 1', to: '' });
  assert.equal(targetLabel(s), 'nb.ipynb, remove cell 4');
  const plain = parseSuggestion({ id: 's2', proposed: 'x', target: {} });
  assert.equal(plain?.auto_apply, undefined);
});

function toolApproval(extra: Partial<IApprovalFrame> = {}): IApprovalFrame {
  return approval({
    approval_id: 'm1',
    kind: 'tool',
    title: 'Call github: create_issue',
    path: null,
    cell_index: null,
    source: '{\n  "title": "Bug"\n}',
    tool: { server: 'github', name: 'create_issue', permission: 'write' },
    ...extra
  });
}

test('a tool approval is answered by the decision alone: Allow sends approve, runs nothing', () => {
  const { approvals, sent } = model();
  const { entry, runNow } = approvals.offer(toolApproval());
  assert.equal(runNow, false);
  assert.equal(entry.state, 'pending');
  // false: there is nothing for the sidebar to run; the server calls the tool.
  assert.equal(approvals.decide('m1', 'allow'), false);
  assert.equal(entry.state, 'done');
  assert.deepEqual(sent, [
    { type: 'approve', v: 1, id: 't1', approval_id: 'm1', decision: 'allow' }
  ]);
  approvals.finish('m1', runResult([], 'ok', 1)); // no run_result for a tool approval
  assert.equal(sent.length, 1);
  approvals.offer(toolApproval({ approval_id: 'm2' }));
  assert.equal(approvals.decide('m2', 'deny'), false);
  assert.equal(approvals.get('m2')?.state, 'denied');
  assert.equal(needsRun(toolApproval()), false);
  assert.equal(needsRun(approval()), true);
});

test("Allow all in this turn covers that server's tools only, never cell runs (and the reverse)", () => {
  const { approvals, sent } = model();
  approvals.offer(toolApproval());
  approvals.decide('m1', 'allow_turn');
  // Another call to the same server in the turn: allowed without asking, nothing runs.
  const same = approvals.offer(toolApproval({ approval_id: 'm2' }));
  assert.equal(same.runNow, false);
  assert.equal(same.entry.state, 'done');
  // A cell run, or another server's tool, still asks.
  assert.equal(
    approvals.offer(approval({ approval_id: 'r1' })).entry.state,
    'pending'
  );
  const other = approvals.offer(
    toolApproval({
      approval_id: 'x1',
      tool: { server: 'jira', name: 'create', permission: 'run' }
    })
  );
  assert.equal(other.entry.state, 'pending');
  // Runs allowed for the turn do not allow a tool either.
  approvals.decide('r1', 'allow_turn');
  const tool = approvals.offer(
    toolApproval({
      approval_id: 'x2',
      tool: { server: 'jira', name: 'create', permission: 'run' }
    })
  );
  assert.equal(tool.entry.state, 'pending');
  assert.equal(approvals.offer(approval({ approval_id: 'r2' })).runNow, true);
  assert.deepEqual(
    sent.map(f =>
      f.type === 'approve' ? `${f.approval_id}:${f.decision}` : f.type
    ),
    ['m1:allow_turn', 'm2:allow', 'r1:allow_turn', 'r2:allow']
  );
  assert.equal(approvalScope(toolApproval()), 'tool:github');
  assert.equal(approvalScope(approval({ kind: 'interrupt' })), 'run');
});

test('an auto tool approval (allowed for the conversation) is done at once, nothing sent', () => {
  const { approvals, sent } = model();
  const { entry, runNow } = approvals.offer(toolApproval({ auto: true }));
  assert.equal(runNow, false);
  assert.equal(entry.state, 'done');
  assert.deepEqual(sent, []);
});

test('the approval frame of kind tool parses with its tool', () => {
  const frame = parseServerFrame(
    JSON.stringify({
      type: 'approval',
      id: 't1',
      approval_id: 'm1',
      kind: 'tool',
      title: 'Call github: create_issue',
      path: null,
      cell_index: null,
      cell_id: null,
      source: '{}',
      suggestion_ids: [],
      tool: { server: 'github', name: 'create_issue', permission: 'write' }
    })
  );
  assert.ok(frame && frame.type === 'approval');
  assert.deepEqual(frame.tool, {
    server: 'github',
    name: 'create_issue',
    permission: 'write'
  });
  assert.equal(frame.path, null);
  const old = parseServerFrame(
    JSON.stringify({ ...approval(), tool: 'not an object' })
  );
  assert.ok(old && old.type === 'approval');
  assert.equal(old.tool, undefined);
});
