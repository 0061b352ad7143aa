/**
 * A suggested change: its diff, and Apply / Reject.
 *
 * Apply goes one of two ways. When the target notebook is open, the browser holds the
 * truth (possibly unsaved), so the change is made there: for a replacement the target
 * cell's current source must still hash to the suggestion's base_hash, the server
 * records the apply (re-checking that hash), and only then is the cell replaced or a
 * code or Markdown cell inserted below it, or the cell removed (placement.ts says
 * which). Otherwise the server applies it to the file on disk, with the same check.
 *
 * A change made in the open notebook can be undone from its card when it was applied
 * without the user pressing Apply (auto-apply, Approve all): Undo puts the cell back as
 * it was and marks the suggestion rejected through the reject path.
 */
import type { ICellModel } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { ApiError, DuckApi } from './api';
import { parseUnifiedDiff, unifiedDiff } from './diff';
import { diffView } from './diffview';
import { button, element } from './dom';
import { contentHash } from './hash';
import {
  applyLabel,
  checksBaseHash,
  diffLabel,
  diffTexts,
  placement,
  targetLabel
} from './placement';
import { ISuggestion } from './protocol';

/** Where an applied suggestion landed. */
export type AppliedIn = 'notebook' | 'file';

export interface IApplyResult {
  suggestion: ISuggestion;
  appliedIn: AppliedIn;
  /** Puts the notebook back as it was; absent for a change to a file on disk. */
  undo?: () => void;
}

/** Apply and reject, as the panel wires them to the server and the open notebooks. */
export interface ISuggestionActions {
  apply(suggestion: ISuggestion): Promise<IApplyResult>;
  /** `reverted`: the change was applied and Undo put it back. */
  reject(suggestion: ISuggestion, reverted?: boolean): Promise<ISuggestion>;
}

export class SuggestionActions implements ISuggestionActions {
  constructor(
    private readonly _api: DuckApi,
    private readonly _notebooks: INotebookTracker | null
  ) {}

  async apply(suggestion: ISuggestion): Promise<IApplyResult> {
    const target = suggestion.target;
    const isCell = target.cell_index !== null || target.cell_id !== null;
    const panel = isCell ? this._openNotebook(target.path) : null;
    if (!panel) {
      const updated = await this._api.applySuggestion(suggestion.id);
      return { suggestion: updated ?? applied(suggestion), appliedIn: 'file' };
    }
    const place = placement(suggestion.mode);
    if (!place) {
      // Applying an unknown kind of change as a replacement could overwrite the cell.
      throw new ApiError(
        400,
        `This page does not know how to apply a "${suggestion.mode}" suggestion; reload the page.`
      );
    }
    const before = findCell(panel, suggestion);
    if (!before) {
      throw new ApiError(
        404,
        `The target cell is no longer in ${panel.context.path}.`
      );
    }
    const source = before.model.sharedModel.getSource();
    const hash = await contentHash(source);
    if (checksBaseHash(place) && hash !== suggestion.base_hash) {
      throw new ApiError(
        409,
        'The cell changed since the suggestion was made; ask again for a fresh one.'
      );
    }
    const updated = await this._api.applySuggestion(suggestion.id, hash);
    // The request took a moment: look again, and never overwrite an edit made meanwhile.
    const now = findCell(panel, suggestion);
    if (!now || now.model.sharedModel.getSource() !== source) {
      throw new ApiError(
        409,
        'The cell changed while the suggestion was being applied; apply it by hand.'
      );
    }
    const cells = panel.content.model?.sharedModel;
    if (place.kind !== 'replace' && !cells) {
      throw new ApiError(
        409,
        'The notebook closed while the suggestion was being applied; apply it by hand.'
      );
    }
    let undo: () => void;
    if (place.kind === 'insert' && cells) {
      cells.insertCell(now.index + 1, {
        cell_type: place.cellType,
        source: suggestion.proposed
      });
      const inserted = panel.content.model?.cells.get(now.index + 1)?.id;
      undo = () => {
        const at = cellIndexById(panel, inserted);
        if (at === null) {
          throw new Error('the inserted cell is no longer in the notebook');
        }
        cells.deleteCell(at);
      };
    } else if (place.kind === 'delete' && cells) {
      const cellType = now.model.type;
      cells.deleteCell(now.index);
      const index = now.index;
      undo = () => {
        cells.insertCell(Math.min(index, cells.cells.length), {
          cell_type: cellType,
          source
        });
      };
    } else {
      const model = now.model;
      model.sharedModel.setSource(suggestion.proposed);
      undo = () => {
        if (model.sharedModel.getSource() !== suggestion.proposed) {
          throw new Error('the cell was edited since; undo it by hand');
        }
        model.sharedModel.setSource(source);
      };
    }
    return {
      suggestion: updated ?? applied(suggestion),
      appliedIn: 'notebook',
      undo
    };
  }

  async reject(
    suggestion: ISuggestion,
    reverted = false
  ): Promise<ISuggestion> {
    return (
      (await this._api.rejectSuggestion(suggestion.id, reverted)) ?? {
        ...suggestion,
        status: 'rejected'
      }
    );
  }

  /** The open notebook at `path`; for an unnamed target, the current one. */
  private _openNotebook(path: string | null): NotebookPanel | null {
    const tracker = this._notebooks;
    if (!tracker) {
      return null;
    }
    if (path === null) {
      return tracker.currentWidget;
    }
    return tracker.find(panel => panel.context.path === path) ?? null;
  }
}

function cellIndexById(
  panel: NotebookPanel,
  id: string | undefined
): number | null {
  const cells = panel.content.model?.cells;
  if (!cells || id === undefined) {
    return null;
  }
  for (let i = 0; i < cells.length; i++) {
    if (cells.get(i).id === id) {
      return i;
    }
  }
  return null;
}

function applied(suggestion: ISuggestion): ISuggestion {
  return { ...suggestion, status: 'applied' };
}

/** The target cell by id (cells move), else by index. */
function findCell(
  panel: NotebookPanel,
  suggestion: ISuggestion
): { model: ICellModel; index: number } | null {
  const cells = panel.content.model?.cells;
  if (!cells) {
    return null;
  }
  const { cell_id: id, cell_index: index } = suggestion.target;
  if (id !== null) {
    for (let i = 0; i < cells.length; i++) {
      if (cells.get(i).id === id) {
        return { model: cells.get(i), index: i };
      }
    }
    // Ids the server saw may have been assigned by the lab; fall back to the index.
  }
  if (index !== null && index < cells.length) {
    return { model: cells.get(index), index };
  }
  return null;
}

const STATUS_TEXT: Record<string, string> = {
  applied: 'Applied',
  rejected: 'Rejected'
};

export interface ISuggestionViewOptions {
  /**
   * When set, Apply and Reject stay disabled with this as their tooltip (e.g. the
   * suggestion belongs to another server).
   */
  blockedReason?: string | null;
  /** The review's findings on this code (rendered correction rounds), shown on the card. */
  findings?: HTMLElement[];
}

/** One suggestion under an answer. */
export class SuggestionView {
  readonly node: HTMLElement;

  constructor(
    private _suggestion: ISuggestion,
    private readonly _actions: ISuggestionActions,
    options: ISuggestionViewOptions | string | null = null
  ) {
    const opts: ISuggestionViewOptions =
      typeof options === 'string' || options === null
        ? { blockedReason: options }
        : options;
    this._blockedReason = opts.blockedReason ?? null;
    const node = element('div', 'jp-RubberDuck-suggestion');
    node.dataset.id = _suggestion.id;
    node.setAttribute('role', 'group');
    const title = _suggestion.title || 'Suggested change';
    node.setAttribute('aria-label', `Suggestion: ${title}`);
    const head = element('div', 'jp-RubberDuck-suggestion-head');
    head.append(
      element('span', 'jp-RubberDuck-suggestion-title', title),
      element(
        'span',
        'jp-RubberDuck-suggestion-target',
        targetLabel(_suggestion)
      )
    );
    this._apply = button(
      'jp-RubberDuck-suggestion-apply',
      applyLabel(_suggestion),
      'Apply'
    );
    this._reject = button(
      'jp-RubberDuck-suggestion-reject',
      'Reject this suggestion',
      'Reject'
    );
    this._undo = button(
      'jp-RubberDuck-suggestion-undo',
      'Undo this change: put the cell back as it was',
      'Undo'
    );
    this._undo.hidden = true;
    this._state = element('span', 'jp-RubberDuck-suggestion-state');
    this._state.setAttribute('role', 'status');
    const actions = element('div', 'jp-RubberDuck-suggestion-actions');
    actions.append(this._apply, this._reject, this._undo, this._state);
    this._apply.addEventListener('click', () => void this._run('apply'));
    this._reject.addEventListener('click', () => void this._run('reject'));
    this._undo.addEventListener('click', () => void this._runUndo());
    node.append(head, renderDiff(_suggestion));
    if (opts.findings?.length) {
      const review = element('div', 'jp-RubberDuck-suggestion-review');
      review.setAttribute('aria-label', 'Review of this code');
      review.append(...opts.findings);
      node.append(review);
    }
    node.append(actions);
    this.node = node;
    this._update();
  }

  get suggestion(): ISuggestion {
    return this._suggestion;
  }

  /** Still waiting for Apply or Reject (and not being applied now). */
  get isPending(): boolean {
    return (
      this._suggestion.status === 'proposed' &&
      !this._busy &&
      !this._blockedReason
    );
  }

  /**
   * Apply it as the Apply button does; with `undoable`, the card then offers Undo (it
   * was applied without the user pressing Apply). False when it did not apply.
   */
  async apply(undoable = false): Promise<boolean> {
    if (!this.isPending) {
      return this._suggestion.status === 'applied';
    }
    await this._run('apply', undoable);
    return this._suggestion.status === 'applied';
  }

  private async _run(
    action: 'apply' | 'reject',
    undoable = false
  ): Promise<void> {
    this._busy = true;
    this._message = null;
    this._failed = false;
    this._update();
    try {
      if (action === 'apply') {
        const result = await this._actions.apply(this._suggestion);
        this._suggestion = result.suggestion;
        this._undoChange = undoable ? (result.undo ?? null) : null;
        this._message =
          result.appliedIn === 'notebook'
            ? 'Applied in the open notebook (not saved yet)'
            : `Applied to ${this._suggestion.target.path ?? 'the file'}`;
      } else {
        this._suggestion = await this._actions.reject(this._suggestion);
      }
    } catch (error) {
      this._message = failureText(error);
      this._failed = true;
    } finally {
      this._busy = false;
      this._update();
    }
  }

  /** Put the notebook back, then record the suggestion as rejected (the reject path). */
  private async _runUndo(): Promise<void> {
    const undo = this._undoChange;
    if (!undo || this._busy) {
      return;
    }
    this._busy = true;
    this._update();
    try {
      undo();
      this._undoChange = null;
      this._reverted = true;
      try {
        this._suggestion = await this._actions.reject(this._suggestion, true);
        this._message = 'Undone';
      } catch {
        // The notebook is back as it was; only the server's record still says applied.
        this._suggestion = { ...this._suggestion, status: 'rejected' };
        this._message =
          'Undone in the notebook (the server still records it as applied)';
      }
      this._failed = false;
    } catch (error) {
      this._message = `Not undone: ${(error as Error).message}`;
      this._failed = true;
    } finally {
      this._busy = false;
      this._update();
    }
  }

  private _update(): void {
    const status = this._suggestion.status;
    this.node.dataset.status = status;
    const open = status === 'proposed' && !this._busy && !this._blockedReason;
    this._apply.disabled = !open;
    this._reject.disabled = !open;
    if (this._blockedReason) {
      this._apply.title = this._blockedReason;
      this._reject.title = this._blockedReason;
    }
    this._apply.hidden = status === 'rejected';
    // An undone change was never rejected by hand: neither button stands for it.
    this._reject.hidden = status === 'applied' || this._reverted;
    this._undo.hidden = !this._undoChange || status !== 'applied';
    this._undo.disabled = this._busy;
    if (this._reverted) {
      this.node.dataset.reverted = 'true';
    }
    if (this._busy) {
      this._state.textContent = 'Working…';
      this._state.dataset.kind = 'busy';
    } else {
      this._state.textContent = this._message ?? STATUS_TEXT[status] ?? '';
      this._state.dataset.kind = this._failed ? 'error' : status;
    }
  }

  private readonly _blockedReason: string | null;
  private _apply: HTMLButtonElement;
  private _reject: HTMLButtonElement;
  private _undo: HTMLButtonElement;
  private _undoChange: (() => void) | null = null;
  private _reverted = false;
  private _state: HTMLSpanElement;
  private _busy = false;
  private _failed = false;
  private _message: string | null = null;
}

function failureText(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 409) {
      return `Not applied: changed since. ${error.message}`;
    }
    if (error.status === 404) {
      return `Not applied: not found. ${error.message}`;
    }
    return error.message;
  }
  return `Failed: ${(error as Error)?.message ?? String(error)}`;
}

/**
 * The change as a unified diff, coloured by line kind; text only, never HTML (so a new
 * Markdown cell shows as its Markdown source). A new cell's diff is all additions.
 */
export function renderDiff(suggestion: ISuggestion): HTMLElement {
  const header = suggestion.diff
    .split('\n')
    .slice(0, 2)
    .filter(line => line.startsWith('---') || line.startsWith('+++'));
  const { from, to } = diffTexts(suggestion);
  const lines =
    unifiedDiff(from, to, header) ?? parseUnifiedDiff(suggestion.diff);
  const pre = diffView(lines, '', diffLabel(suggestion));
  // Shown as source, never rendered: the mode says what the lines are.
  pre.dataset.mode = suggestion.mode;
  return pre;
}
