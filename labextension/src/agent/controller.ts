/**
 * The sidebar's side of an agent turn: approval frames become cards in the answer, the
 * user's decisions and run results go back through the connection, approved runs happen
 * in the notebook (runner.ts), and the notebook follows the steps (follow.ts). The panel
 * hands it the frames; Stop and the turn's end close what still waits.
 */
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { CommandRegistry } from '@lumino/commands';

import type { AnswerView } from '../answer';
import {
  ApprovalDecision,
  ApprovalKind,
  ClientFrame,
  IAgentCapabilities,
  IApprovalClosedFrame,
  IApprovalFrame,
  IStepFrame
} from '../protocol';
import { ApprovalCard } from './approvalcard';
import { ApprovalsModel, IApprovalEntry } from './approvals';
import { followCell } from './follow';
import { CellRunner } from './runner';
import { notRun } from './runresult';
import { cellFocus } from './steps';

export interface IAgentServices {
  /** Sends a frame now, or holds it for the next socket (connection.ts). */
  send(frame: ClientFrame): boolean;
  notebooks: INotebookTracker | null;
  commands: CommandRegistry | null;
  languages: IEditorLanguageRegistry | null;
}

export class AgentController {
  constructor(private readonly _services: IAgentServices) {
    this.approvals = new ApprovalsModel(frame => _services.send(frame));
    this._runner = new CellRunner(_services);
    this.approvals.changed.connect((_, entry) =>
      this._cards.get(entry.frame.approval_id)?.update(entry)
    );
  }

  readonly approvals: ApprovalsModel;

  /** What the sidebar tells the agent in every chat frame's context. */
  capabilities(autoApply: boolean): IAgentCapabilities {
    return { can_run: true, auto_apply: autoApply };
  }

  /** A step of the turn: the notebook scrolls to the cell its tool call is about. */
  onStep(frame: IStepFrame): void {
    if (frame.status === 'started') {
      followCell(this._services.notebooks, cellFocus(frame.tool));
    }
  }

  /** An approval frame of the turn `answer` is drawing. */
  onApproval(frame: IApprovalFrame, answer: AnswerView): void {
    const { entry, runNow } = this.approvals.offer(frame);
    if (!this._cards.has(frame.approval_id)) {
      const card = new ApprovalCard(
        entry,
        decision => this._decide(entry, decision),
        this._services.languages
      );
      this._cards.set(frame.approval_id, card);
      this._answers.set(frame.approval_id, answer);
      answer.addApproval(card.node);
      if (!runNow) {
        // The turn waits on it: bring it into view, whatever the user scrolled to, but
        // leave the focus where it is (they may be typing).
        card.node.scrollIntoView({ block: 'nearest' });
      }
    }
    if (runNow) {
      void this._run(entry);
    }
  }

  onClosed(frame: IApprovalClosedFrame): void {
    this.approvals.close(frame.approval_id, frame.reason);
  }

  /** Stop, done or error: cards still waiting are closed. */
  endTurn(turnId: string, reason = 'cancelled'): void {
    this.approvals.endTurn(turnId, reason);
  }

  /** Another conversation is shown: its cards are gone with the log. */
  clear(): void {
    this.approvals.clear();
    this._cards.clear();
    this._answers.clear();
  }

  private _decide(entry: IApprovalEntry, decision: ApprovalDecision): void {
    if (this.approvals.decide(entry.frame.approval_id, decision)) {
      void this._run(entry);
    }
  }

  private async _run(entry: IApprovalEntry): Promise<void> {
    const frame = entry.frame;
    followCell(
      this._services.notebooks,
      frame.path && frame.cell_index !== null
        ? { path: frame.path, index: frame.cell_index - 1 }
        : null
    );
    const answer = this._answers.get(frame.approval_id);
    let result;
    try {
      result =
        frame.kind === ApprovalKind.INTERRUPT
          ? await this._runner.interrupt(frame)
          : frame.kind === ApprovalKind.RUN
            ? await this._runner.run(frame, async id => {
                const view = answer?.suggestionView(id);
                if (view && !(await view.apply())) {
                  throw new Error(
                    view.node.querySelector('.jp-RubberDuck-suggestion-state')
                      ?.textContent || 'not applied'
                  );
                }
              })
            : notRun(
                'UnknownKind',
                `This page cannot do "${frame.kind}"; reload it.`
              );
    } catch (error) {
      result = notRun('RunFailed', (error as Error)?.message ?? String(error));
    }
    this.approvals.finish(frame.approval_id, result);
  }

  private _runner: CellRunner;
  private _cards = new Map<string, ApprovalCard>();
  private _answers = new Map<string, AnswerView>();
}
