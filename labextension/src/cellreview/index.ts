/**
 * Review on the cell: the commands (rubberduck:review-cell, rubberduck:review-notebook),
 * their toolbar and context-menu entries, the findings widgets under cells, the marks in
 * the editors, the notebook pass with its progress and summary, and review on run.
 *
 * State lives in `CellReviewModel`; this file wires it to JupyterLab's cells.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { ICommandPalette } from '@jupyterlab/apputils';
import type { Cell } from '@jupyterlab/cells';
import {
  INotebookTracker,
  Notebook,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { inspectorIcon } from '@jupyterlab/ui-components';
import type { PanelLayout } from '@lumino/widgets';

import { ApiError, describeError, DuckApi } from '../api';
import { contentHash } from '../hash';
import type { ISuggestion } from '../protocol';
import type { DuckSettings } from '../settings';
import { SuggestionActions } from '../suggestion';
import { CellReviewApi, INotebookCellInput } from './api';
import { markLines } from './editor';
import {
  CellReviewModel,
  ICellFinding,
  ICrossCellFinding,
  IStaticReview,
  NotebookReviewRun
} from './model';
import { NotebookReviewBar } from './summary';
import { FindingsWidget } from './view';

export namespace CellReviewCommandIDs {
  export const reviewCell = 'rubberduck:review-cell';
  export const reviewNotebook = 'rubberduck:review-notebook';
}

interface ICellEntry {
  cell: Cell;
  panel: NotebookPanel;
  widget: FindingsWidget;
  suggestion: ISuggestion | null;
  abort: AbortController | null;
}

/** A short stable name for a notebook's review conversation. */
function conversationFor(path: string): string {
  let hash = 0;
  for (let i = 0; i < path.length; i++) {
    hash = (Math.imul(hash, 31) + path.charCodeAt(i)) | 0;
  }
  return `cellreview-${(hash >>> 0).toString(36)}`;
}

function codeCellsAbove(panel: NotebookPanel, cell: Cell): string[] {
  const out: string[] = [];
  for (const other of panel.content.widgets) {
    if (other === cell) {
      break;
    }
    if (other.model.type === 'code') {
      out.push(other.model.sharedModel.getSource());
    }
  }
  return out;
}

/**
 * Code cells per request of the notebook pass. Measured through REST on 100 pdsh cells
 * (2026-12-03): 4 requests of 25 took 0.09-0.22 s, one request of 100 0.04-0.08 s. The
 * few hundredths more buy a progress bar that moves and a Cancel that lands within one
 * slice's request, and keep each request's ruff run short on 2 shared cores.
 */
export const NOTEBOOK_SLICE = 25;

interface ICodeCellTarget {
  cell: Cell;
  input: INotebookCellInput;
}

/** The notebook's code cells now, each with what the review requests send of it. */
function codeCellTargets(panel: NotebookPanel): ICodeCellTarget[] {
  const out: ICodeCellTarget[] = [];
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') {
      return;
    }
    const count = (cell.model as { executionCount?: number | null })
      .executionCount;
    out.push({
      cell,
      input: {
        index,
        source: cell.model.sharedModel.getSource(),
        execution_count: typeof count === 'number' ? count : null
      }
    });
  });
  return out;
}

/** `[start, stop)` positions of `count` items, `size` at a time. */
function slices(
  count: number,
  size: number
): { start: number; stop: number }[] {
  const out: { start: number; stop: number }[] = [];
  for (let start = 0; start < count; start += size) {
    out.push({ start, stop: Math.min(start + size, count) });
  }
  return out;
}

/**
 * The notebook bar's text for a failed pass. A 429 `busy` (the server already runs its 2
 * static passes) says when to try again from its Retry-After, as a rate limit's advice
 * does (api.ts errorAdvice); busy's own advice would only say to wait.
 */
function notebookErrorText(error: unknown): {
  text: string;
  retryAfter?: number;
} {
  if (
    error instanceof ApiError &&
    error.code === 'busy' &&
    error.retryAfter !== undefined
  ) {
    const seconds = Math.max(1, Math.ceil(error.retryAfter));
    const message = error.message.trim().replace(/([^.!?])$/, '$1.');
    return {
      text: `${message} Try again in ${seconds} s.`,
      retryAfter: error.retryAfter
    };
  }
  return { text: describeError(error) };
}

export class CellReviewController {
  readonly model = new CellReviewModel();

  constructor(
    private readonly _api: CellReviewApi,
    private readonly _suggestionActions: SuggestionActions
  ) {
    this.model.changed.connect((_, cellId) => this._redraw(cellId));
  }

  /** The static findings at once; then, with `withModel`, the model's review streams. */
  async reviewCell(
    panel: NotebookPanel,
    cell: Cell,
    withModel: boolean
  ): Promise<void> {
    if (cell.model.type !== 'code') {
      return;
    }
    const source = cell.model.sharedModel.getSource();
    const review = await this._api.reviewCell(
      source,
      [],
      codeCellsAbove(panel, cell)
    );
    const entry = this._showStatic(panel, cell, source, review, withModel);
    if (withModel && entry) {
      void this._streamModel(entry, source);
    }
  }

  /**
   * Every code cell's static review, a slice of NOTEBOOK_SLICE cells per request (POST
   * /review/notebook with "static", the whole notebook as it was at the start each time,
   * so every slice sees the names bound above it), then a summary. The last slice also
   * brings the cross-cell findings. Progress moves a slice at a time; Cancel aborts the
   * request in flight and sends no other.
   */
  async reviewNotebook(
    panel: NotebookPanel,
    onJump: (cell: Cell) => void
  ): Promise<void> {
    const targets = codeCellTargets(panel);
    const inputs = targets.map(target => target.input);
    const byIndex = new Map(
      targets.map(target => [target.input.index, target])
    );
    let crossCell: ICrossCellFinding[] = [];
    const run = new NotebookReviewRun(
      slices(targets.length, NOTEBOOK_SLICE),
      async ({ start, stop }, signal) => {
        const last = stop === targets.length;
        const answer = await this._api.reviewNotebookStatic(
          inputs,
          start,
          stop,
          last,
          signal
        );
        for (const { index, review } of answer.cells) {
          const target = byIndex.get(index);
          if (target && !target.cell.isDisposed) {
            this._showStatic(panel, target.cell, target.input.source, review);
          }
        }
        if (last) {
          crossCell = answer.crossCell;
        }
      },
      ({ start, stop }) => stop - start
    );
    // A second pass on the same notebook replaces the first: its requests stop, and its
    // end no longer draws in the bar.
    this._runs.get(panel)?.cancel();
    this._runs.set(panel, run);
    const bar = NotebookReviewBar.forPanel(panel);
    bar.showProgress(run);
    let failure: { error: unknown } | null = null;
    try {
      await run.run();
      if (!run.cancelled) {
        await this._showCrossCell(panel, targets, crossCell);
      }
    } catch (error) {
      failure = { error };
    }
    if (this._runs.get(panel) !== run) {
      return;
    }
    this._runs.delete(panel);
    if (failure) {
      const { text, retryAfter } = notebookErrorText(failure.error);
      bar.showError(text, retryAfter);
      return;
    }
    const rows = targets
      .filter(({ cell }) => !cell.isDisposed)
      .map(({ cell }) => ({
        cell,
        index: panel.content.widgets.indexOf(cell),
        findings: this.model.get(cell.model.id)?.findings ?? []
      }))
      .filter(row => row.index >= 0 && row.findings.length > 0);
    bar.showSummary(rows, run.done, run.total, run.cancelled, onJump);
  }

  /** Accept a static fix: the hash check, then the edit through the notebook model. */
  async accept(
    panel: NotebookPanel,
    cell: Cell,
    finding: ICellFinding
  ): Promise<void> {
    const id = cell.model.id;
    const current = cell.model.sharedModel.getSource();
    const hash = await contentHash(current);
    if (
      !this.model.canAccept(id, finding, hash) ||
      finding.replacement === null
    ) {
      throw new Error(
        'The cell changed since this review; review it again first.'
      );
    }
    // setSource goes through the shared model, so the editor's undo restores the cell.
    cell.model.sharedModel.setSource(finding.replacement);
    await this.reviewCell(panel, cell, false);
  }

  dismiss(cellId: string): void {
    const entry = this._entries.get(cellId);
    entry?.abort?.abort();
    this.model.clear(cellId);
    if (entry) {
      markLines(entry.cell.editor, [], false);
      entry.widget.dispose();
      this._entries.delete(cellId);
    }
  }

  /**
   * A static review of `source` (what `cell` held when it was sent) on its cell. With
   * `withWidget` false, a clean cell that has no widget yet gets none, only its state:
   * the notebook pass and review on run leave clean cells as they were. Returns the
   * cell's entry when it has one.
   */
  private _showStatic(
    panel: NotebookPanel,
    cell: Cell,
    source: string,
    review: IStaticReview,
    withWidget = false
  ): ICellEntry | null {
    const id = cell.model.id;
    if (!withWidget && !review.findings.length && !this._entries.has(id)) {
      this.model.setStatic(id, source, review.sourceHash, []);
      return null;
    }
    const entry = this._entry(panel, cell);
    entry.abort?.abort();
    entry.suggestion = null;
    this.model.setStatic(id, source, review.sourceHash, review.findings);
    // The cell may have changed while the request ran.
    this.model.sourceChanged(id, cell.model.sharedModel.getSource());
    return entry;
  }

  /** The cross-cell findings on their cells, replacing each cell's earlier ones. */
  private async _showCrossCell(
    panel: NotebookPanel,
    targets: ICodeCellTarget[],
    found: ICrossCellFinding[]
  ): Promise<void> {
    for (const { cell, input } of targets) {
      if (cell.isDisposed) {
        continue;
      }
      const findings = found
        .filter(f => f.cell === input.index)
        .map(f => f.finding);
      const existing = this.model.get(cell.model.id);
      // A clean cell keeps no widget: every cell has a static state by now, so the state
      // alone would put "No findings" under each of them.
      if (!findings.length && !this._entries.has(cell.model.id)) {
        continue;
      }
      this._entry(panel, cell);
      const hash =
        existing?.source === input.source
          ? existing.sourceHash
          : await contentHash(input.source);
      this.model.setNotebookFindings(
        cell.model.id,
        input.source,
        hash,
        findings
      );
      // They were found in the notebook as it was at the start of the pass.
      this.model.sourceChanged(
        cell.model.id,
        cell.model.sharedModel.getSource()
      );
    }
  }

  private async _streamModel(entry: ICellEntry, source: string): Promise<void> {
    const id = entry.cell.model.id;
    const abort = new AbortController();
    entry.abort = abort;
    this.model.modelStarted(id);
    const index = entry.panel.content.widgets.indexOf(entry.cell);
    try {
      await this._api.streamModelReview(
        conversationFor(entry.panel.context.path),
        {
          notebook_path: entry.panel.context.path,
          active_cell: source,
          cell_index: index,
          cell_id: id
        },
        {
          chunk: text => this.model.modelChunk(id, text),
          suggestion: suggestion => {
            entry.suggestion = suggestion;
            this._redraw(id);
          }
        },
        abort.signal
      );
      this.model.modelEnded(id);
    } catch (error) {
      if (!abort.signal.aborted) {
        this.model.modelEnded(id, describeError(error));
      }
    }
  }

  private _entry(panel: NotebookPanel, cell: Cell): ICellEntry {
    const id = cell.model.id;
    const existing = this._entries.get(id);
    if (existing && !existing.widget.isDisposed) {
      return existing;
    }
    const widget = new FindingsWidget({
      accept: finding => this.accept(panel, cell, finding),
      reviewAgain: () => void this.reviewCell(panel, cell, true),
      dismiss: () => this.dismiss(id),
      goToLine: line => {
        cell.editor?.setCursorPosition({ line: line - 1, column: 0 });
        cell.editor?.focus();
      },
      suggestionActions: this._suggestionActions
    });
    const layout = cell.layout as PanelLayout;
    const inputWrapper = cell.inputArea?.parent;
    const at = inputWrapper ? layout.widgets.indexOf(inputWrapper) : -1;
    layout.insertWidget(at >= 0 ? at + 1 : layout.widgets.length, widget);
    const entry: ICellEntry = {
      cell,
      panel,
      widget,
      suggestion: null,
      abort: null
    };
    this._entries.set(id, entry);
    const onChange = (): void =>
      this.model.sourceChanged(id, cell.model.sharedModel.getSource());
    cell.model.contentChanged.connect(onChange);
    cell.disposed.connect(() => {
      cell.model.contentChanged.disconnect(onChange);
      this._entries.delete(id);
    });
    return entry;
  }

  private _redraw(cellId: string): void {
    const entry = this._entries.get(cellId);
    const review = this.model.get(cellId);
    if (!entry || !review || entry.widget.isDisposed) {
      return;
    }
    entry.widget.render(review, entry.suggestion);
    markLines(
      entry.cell.editor,
      review.findings.map(f => ({ line: f.line, severity: f.severity })),
      review.stale
    );
  }

  private _entries = new Map<string, ICellEntry>();
  /** The notebook pass under way on each panel. */
  private _runs = new WeakMap<NotebookPanel, { cancel(): void }>();
}

export function activateCellReview(
  app: JupyterFrontEnd,
  notebooks: INotebookTracker | null,
  settings: DuckSettings,
  palette: ICommandPalette | null,
  api: DuckApi
): CellReviewController | null {
  if (!notebooks) {
    return null;
  }
  const controller = new CellReviewController(
    new CellReviewApi(),
    new SuggestionActions(api, notebooks)
  );
  const active = (): { panel: NotebookPanel; cell: Cell } | null => {
    const panel = notebooks.currentWidget;
    const cell = panel?.content.activeCell;
    return panel && cell && !cell.isDisposed ? { panel, cell } : null;
  };
  const report = (error: unknown): void =>
    console.warn('RubberDuck review failed:', describeError(error));
  const jump = (panel: NotebookPanel) => (cell: Cell) => {
    const index = panel.content.widgets.indexOf(cell);
    if (index < 0) {
      return;
    }
    panel.content.activeCellIndex = index;
    void panel.content
      .scrollToCell(cell, 'center')
      .then(() => cell.node.focus());
    app.shell.activateById(panel.id);
  };

  app.commands.addCommand(CellReviewCommandIDs.reviewCell, {
    label: args => (args.toolbar ? '' : 'Review Cell with RubberDuck'),
    caption:
      "Review the active cell: static findings at once, then the model's review",
    icon: args => (args.toolbar ? inspectorIcon : undefined),
    isEnabled: () => active()?.cell.model.type === 'code',
    execute: async () => {
      const target = active();
      if (target) {
        await controller
          .reviewCell(target.panel, target.cell, true)
          .catch(report);
      }
    }
  });
  app.commands.addCommand(CellReviewCommandIDs.reviewNotebook, {
    label: 'Review Notebook with RubberDuck',
    caption:
      'Review every code cell of the notebook (static checks and cross-cell analysis)',
    isEnabled: () => notebooks.currentWidget !== null,
    execute: async () => {
      const panel = notebooks.currentWidget;
      if (panel) {
        await controller.reviewNotebook(panel, jump(panel)).catch(report);
      }
    }
  });
  for (const command of Object.values(CellReviewCommandIDs)) {
    palette?.addItem({ command, category: 'RubberDuck' });
  }
  app.contextMenu.addItem({
    command: CellReviewCommandIDs.reviewCell,
    selector: '.jp-Notebook .jp-CodeCell',
    rank: 13
  });
  notebooks.activeCellChanged.connect(() =>
    app.commands.notifyCommandChanged(CellReviewCommandIDs.reviewCell)
  );

  // Review on run: static findings only, no model call; the setting applies live.
  NotebookActions.executed.connect((_, { notebook, cell }) => {
    if (!settings.values.autoReviewOnRun || cell.model.type !== 'code') {
      return;
    }
    const panel = notebooks.find(p => p.content === (notebook as Notebook));
    if (panel) {
      void controller.reviewCell(panel, cell, false).catch(report);
    }
  });
  return controller;
}
