/**
 * One approval request drawn in the answer: what the agent wants to run (title, the
 * cell's code, coloured), and Run / Run all in this turn / Always for this conversation /
 * Don't run, then how the run went. A `tool` approval (an MCP server's write/run tool)
 * shows the server, the tool and its arguments (JSON, coloured) with Allow / Allow all in
 * this turn / Always for this conversation / Don't allow; allowing it only answers (the
 * server calls the tool). Plain buttons, so Tab reaches them and Enter or Space presses
 * them; the entry's state (approvals.ts) decides what shows.
 */
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror';

import { highlightBlock } from '../codeblock';
import { button, element } from '../dom';
import { ApprovalDecision, ApprovalKind, IApprovalTool } from '../protocol';
import type { IApprovalEntry } from './approvals';

const CLOSED_TEXT: Record<string, string> = {
  answered: 'Answered in another tab',
  timeout: 'Not answered in time: the agent went on without running it',
  cancelled: 'Cancelled'
};
const TOOL_CLOSED_TEXT: Record<string, string> = {
  ...CLOSED_TEXT,
  timeout: 'Not answered in time: the agent went on without calling it'
};

/** The words of a card's four buttons: [text, label] for each decision. */
interface IButtonWords {
  allow: [string, string];
  allowTurn: [string, string];
  allowConversation: [string, string];
  deny: [string, string];
}

function cellWords(verb: string): IButtonWords {
  return {
    allow: [verb, `${verb} this once`],
    allowTurn: [
      'Run all in this turn',
      `${verb} this and every further cell the agent runs in this answer`
    ],
    allowConversation: [
      'Always for this conversation',
      'Run this and never ask again in this conversation'
    ],
    deny: ["Don't run", `Don't ${verb.toLowerCase()} it: the agent is told`]
  };
}

function toolWords(server: string): IButtonWords {
  return {
    allow: ['Allow', 'Allow this call once'],
    allowTurn: [
      'Allow all in this turn',
      `Allow this and every further call to ${server}'s tools in this answer`
    ],
    allowConversation: [
      'Always for this conversation',
      `Allow ${server}'s tools and never ask again in this conversation (cell runs still ask)`
    ],
    deny: ["Don't allow", "Don't call it: the agent is told"]
  };
}

export class ApprovalCard {
  readonly node: HTMLElement;

  constructor(
    private _entry: IApprovalEntry,
    decide: (decision: ApprovalDecision) => void,
    languages: IEditorLanguageRegistry | null
  ) {
    const frame = _entry.frame;
    const interrupt = frame.kind === ApprovalKind.INTERRUPT;
    const tool = frame.kind === ApprovalKind.TOOL;
    const server = frame.tool?.server ?? '';
    const node = element('div', 'jp-RubberDuck-approval');
    node.dataset.approvalId = frame.approval_id;
    node.dataset.kind = frame.kind;
    node.setAttribute('role', 'group');
    const title =
      frame.title ||
      (interrupt
        ? 'Interrupt the kernel'
        : tool
          ? `Call ${server}: ${frame.tool?.name ?? ''}`
          : `Run cell ${frame.cell_index ?? ''}`);
    node.setAttribute('aria-label', `Approval: ${title}`);
    const head = element('div', 'jp-RubberDuck-approval-head');
    head.append(element('span', 'jp-RubberDuck-approval-title', title));
    if (frame.path) {
      head.append(element('span', 'jp-RubberDuck-approval-target', frame.path));
    }
    node.append(head);
    if (tool) {
      node.append(toolLine(frame.tool ?? null));
    }
    if (!interrupt && frame.source) {
      const pre = element('pre', 'jp-RubberDuck-approval-code');
      pre.tabIndex = 0; // a long cell scrolls from the keyboard
      pre.setAttribute(
        'aria-label',
        tool ? 'The arguments of the call' : 'The code to run'
      );
      const code = element(
        'code',
        tool ? 'language-json' : 'language-python',
        frame.source
      );
      pre.append(code);
      node.append(pre);
      if (languages) {
        void highlightBlock(code, languages);
      }
    }
    if (frame.suggestion_ids.length) {
      node.append(
        element(
          'div',
          'jp-RubberDuck-approval-note',
          frame.suggestion_ids.length === 1
            ? 'Running applies the pending edit on this cell first.'
            : `Running applies the ${frame.suggestion_ids.length} pending edits on this cell first.`
        )
      );
    }
    const words = tool
      ? toolWords(server)
      : cellWords(interrupt ? 'Interrupt' : 'Run');
    const actions = element('div', 'jp-RubberDuck-approval-actions');
    this._buttons = [
      this._button('allow', words.allow, ApprovalDecision.ALLOW, decide),
      this._button(
        'allow-turn',
        words.allowTurn,
        ApprovalDecision.ALLOW_TURN,
        decide
      ),
      this._button(
        'allow-conversation',
        words.allowConversation,
        ApprovalDecision.ALLOW_CONVERSATION,
        decide
      ),
      this._button('deny', words.deny, ApprovalDecision.DENY, decide)
    ];
    this._state = element('span', 'jp-RubberDuck-approval-state');
    this._state.setAttribute('role', 'status');
    actions.append(...this._buttons, this._state);
    node.append(actions);
    this.node = node;
    this.update(_entry);
  }

  /** The first button, for the keyboard to land on. */
  get firstButton(): HTMLButtonElement {
    return this._buttons[0];
  }

  update(entry: IApprovalEntry): void {
    this._entry = entry;
    const state = entry.state;
    this.node.dataset.state = state;
    const open = state === 'pending';
    for (const b of this._buttons) {
      b.disabled = !open;
      b.hidden = !open;
    }
    this._state.dataset.kind = state;
    this._state.textContent = stateText(entry);
  }

  private _button(
    name: string,
    [text, label]: [string, string],
    decision: ApprovalDecision,
    decide: (decision: ApprovalDecision) => void
  ): HTMLButtonElement {
    const node = button(`jp-RubberDuck-approval-${name}`, label, text);
    node.addEventListener('click', () => {
      if (this._entry.state === 'pending') {
        decide(decision);
      }
    });
    return node;
  }

  private _buttons: HTMLButtonElement[];
  private _state: HTMLElement;
}

/** "Server github · tool create_issue · write": what a tool approval would call. */
function toolLine(tool: IApprovalTool | null): HTMLElement {
  const line = element('div', 'jp-RubberDuck-approval-tool');
  const part = (label: string, value: string, kind: string): void => {
    const span = element('span', `jp-RubberDuck-approval-tool-${kind}`);
    span.append(`${label} `, element('code', '', value));
    line.append(span);
  };
  part('MCP server', tool?.server ?? '?', 'server');
  part('tool', tool?.name ?? '?', 'name');
  line.append(
    element(
      'span',
      'jp-RubberDuck-approval-tool-permission',
      `${tool?.permission ?? 'run'} permission`
    )
  );
  return line;
}

export function stateText(entry: IApprovalEntry): string {
  if (entry.frame.kind === ApprovalKind.TOOL) {
    return toolStateText(entry);
  }
  switch (entry.state) {
    case 'pending':
      return 'Waiting for you';
    case 'running':
      return entry.frame.kind === ApprovalKind.INTERRUPT
        ? 'Interrupting…'
        : 'Running…';
    case 'denied':
      return 'Not run: the agent was told';
    case 'closed':
      return CLOSED_TEXT[entry.reason ?? ''] ?? 'Closed';
    case 'done': {
      const result = entry.result;
      if (!result) {
        return 'Done';
      }
      if (result.status === 'ok') {
        return entry.frame.kind === ApprovalKind.INTERRUPT
          ? 'Interrupted'
          : `Ran${result.execution_count !== null ? ` [${result.execution_count}]` : ''}`;
      }
      if (result.error) {
        return `${result.status === 'aborted' ? 'Not run' : 'Failed'}: ${result.error.ename}${result.error.evalue ? `: ${result.error.evalue}` : ''}`;
      }
      return result.status === 'aborted' ? 'Aborted' : 'Failed';
    }
  }
}

function toolStateText(entry: IApprovalEntry): string {
  switch (entry.state) {
    case 'pending':
      return 'Waiting for you';
    case 'running':
    case 'done':
      return entry.frame.auto || entry.decision === null
        ? 'Allowed earlier: called'
        : 'Allowed: the server calls it';
    case 'denied':
      return 'Not called: the agent was told';
    case 'closed':
      return TOOL_CLOSED_TEXT[entry.reason ?? ''] ?? 'Closed';
  }
}
