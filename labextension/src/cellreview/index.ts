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

import { describeError, DuckApi } from '../api';
import { contentHash } from '../hash';
import type { ISuggestion } from '../protocol';
import type { DuckSettings } from '../settings';
import { SuggestionActions } from '../suggestion';
import { CellReviewApi } from './api';
import { markLines } from './editor';
import { CellReviewModel, ICellFinding, NotebookReviewRun } from './model';
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
    const id = cell.model.id;
    const source = cell.model.sharedModel.getSource();
    const review = await this._api.reviewCell(
      source,
      [],
      codeCellsAbove(panel, cell)
    );
    if (!withModel && !review.findings.length && !this._entries.has(id)) {
      // A clean cell of the notebook pass or of a run gets no widget, only its state.
      this.model.setStatic(id, source, review.sourceHash, []);
      return;
    }
    const entry = this._entry(panel, cell);
    entry.abort?.abort();
    entry.suggestion = null;
    this.model.setStatic(id, source, review.sourceHash, review.findings);
    // The cell may have changed while the request ran.
    this.model.sourceChanged(id, cell.model.sharedModel.getSource());
    if (withModel) {
      void this._streamModel(entry, source);
    }
  }

  /** Every code cell's static review, then the cross-cell analysis; a summary at the end. */
  async reviewNotebook(
    panel: NotebookPanel,
    onJump: (cell: Cell) => void
  ): Promise<void> {
    const cells = panel.content.widgets.filter(c => c.model.type === 'code');
    const bar = NotebookReviewBar.forPanel(panel);
    const run = new NotebookReviewRun(cells, cell =>
      this.reviewCell(panel, cell, false)
    );
    bar.showProgress(run);
    try {
      await run.run();
      if (!run.cancelled) {
        await this._crossCell(panel);
      }
    } catch (error) {
      bar.showError(describeError(error));
      return;
    }
    const rows = cells
      .map(cell => ({
        cell,
        index: panel.content.widgets.indexOf(cell),
        findings: this.model.get(cell.model.id)?.findings ?? []
      }))
      .filter(row => row.findings.length > 0);
    bar.showSummary(rows, run.done, cells.length, run.cancelled, onJump);
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

  private async _crossCell(panel: NotebookPanel): Promise<void> {
    const widgets = panel.content.widgets;
    const inputs = widgets
      .map((cell, index) => ({ cell, index }))
      .filter(({ cell }) => cell.model.type === 'code')
      .map(({ cell, index }) => {
        const count = (cell.model as { executionCount?: number | null })
          .executionCount;
        return {
          index,
          source: cell.model.sharedModel.getSource(),
          execution_count: typeof count === 'number' ? count : null
        };
      });
    const found = await this._api.reviewNotebook(inputs);
    for (const input of inputs) {
      const cell = widgets[input.index];
      const findings = found
        .filter(f => f.cell === input.index)
        .map(f => f.finding);
      const existing = this.model.get(cell.model.id);
      if (!findings.length && !existing) {
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
