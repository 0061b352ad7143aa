/**
 * One approval request drawn in the answer: what the agent wants to run (title, the
 * cell's code, coloured), and Run / Run all in this turn / Always for this conversation /
 * Don't run, then how the run went. Plain buttons, so Tab reaches them and Enter or Space
 * presses them; the entry's state (approvals.ts) decides what shows.
 */
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror';

import { highlightBlock } from '../codeblock';
import { button, element } from '../dom';
import { ApprovalDecision, ApprovalKind } from '../protocol';
import type { IApprovalEntry } from './approvals';

const CLOSED_TEXT: Record<string, string> = {
  answered: 'Answered in another tab',
  timeout: 'Not answered in time: the agent went on without running it',
  cancelled: 'Cancelled'
};

export class ApprovalCard {
  readonly node: HTMLElement;

  constructor(
    private _entry: IApprovalEntry,
    decide: (decision: ApprovalDecision) => void,
    languages: IEditorLanguageRegistry | null
  ) {
    const frame = _entry.frame;
    const interrupt = frame.kind === ApprovalKind.INTERRUPT;
    const node = element('div', 'jp-RubberDuck-approval');
    node.dataset.approvalId = frame.approval_id;
    node.dataset.kind = frame.kind;
    node.setAttribute('role', 'group');
    const title =
      frame.title ||
      (interrupt
        ? 'Interrupt the kernel'
        : `Run cell ${frame.cell_index ?? ''}`);
    node.setAttribute('aria-label', `Approval: ${title}`);
    const head = element('div', 'jp-RubberDuck-approval-head');
    head.append(element('span', 'jp-RubberDuck-approval-title', title));
    if (frame.path) {
      head.append(element('span', 'jp-RubberDuck-approval-target', frame.path));
    }
    node.append(head);
    if (!interrupt && frame.source) {
      const pre = element('pre', 'jp-RubberDuck-approval-code');
      pre.tabIndex = 0; // a long cell scrolls from the keyboard
      pre.setAttribute('aria-label', 'The code to run');
      const code = element('code', 'language-python', frame.source);
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
    const verb = interrupt ? 'Interrupt' : 'Run';
    const actions = element('div', 'jp-RubberDuck-approval-actions');
    this._buttons = [
      this._button(
        'allow',
        `${verb} this once`,
        verb,
        ApprovalDecision.ALLOW,
        decide
      ),
      this._button(
        'allow-turn',
        `${verb} this and every further cell the agent runs in this answer`,
        'Run all in this turn',
        ApprovalDecision.ALLOW_TURN,
        decide
      ),
      this._button(
        'allow-conversation',
        'Run this and never ask again in this conversation',
        'Always for this conversation',
        ApprovalDecision.ALLOW_CONVERSATION,
        decide
      ),
      this._button(
        'deny',
        `Don't ${verb.toLowerCase()} it: the agent is told`,
        "Don't run",
        ApprovalDecision.DENY,
        decide
      )
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
    label: string,
    text: string,
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

export function stateText(entry: IApprovalEntry): string {
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
