import type { Cell, ICodeCellModel } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { IChatContext } from './protocol';

/*
 * Caps well under the server's 256 KiB frame limit (UTF-8 can triple a character),
 * so a big cell never makes the question itself fail.
 */
const MAX_CELL_CHARS = 20_000;
const MAX_SELECTION_CHARS = 10_000;
const MAX_ERROR_CHARS = 8_000;
const MAX_PATH_CHARS = 1_000;

const TRUNCATED = '\n… [truncated]';

// Tracebacks arrive coloured for terminals; the model wants plain text.
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\x1b\[[0-9;]*[A-Za-z]/g;

function head(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max) + TRUNCATED;
}

// The end of a traceback names the actual failure, so keep that end.
function tail(text: string, max: number): string {
  return text.length <= max ? text : '[truncated] …\n' + text.slice(-max);
}

export function currentNotebook(
  tracker: INotebookTracker | null
): NotebookPanel | null {
  const panel = tracker?.currentWidget ?? null;
  return panel && !panel.isDisposed ? panel : null;
}

/** What to tell the model about the notebook the user was last working in. */
export function notebookContext(
  tracker: INotebookTracker | null
): IChatContext {
  const panel = currentNotebook(tracker);
  if (!panel) {
    return {};
  }
  const cell = panel.content.activeCell;
  return cellContext(panel, cell && !cell.isDisposed ? cell : null);
}

/** The notebook and one of its cells: source, position, selection, last error. */
export function cellContext(
  panel: NotebookPanel,
  cell: Cell | null
): IChatContext {
  const context: IChatContext = {
    notebook_path: head(panel.context.path, MAX_PATH_CHARS)
  };
  const kernelId = panel.sessionContext.session?.kernel?.id;
  if (kernelId) {
    context.kernel_id = kernelId;
  }
  if (!cell) {
    return context;
  }
  const index = panel.content.widgets.indexOf(cell);
  if (index >= 0) {
    context.cell_index = index;
  }
  if (cell.model.id) {
    context.cell_id = cell.model.id;
  }
  // nbformat's three types; JupyterLab types the model's as a wider string.
  const type = cell.model.type;
  if (type === 'code' || type === 'markdown' || type === 'raw') {
    context.cell_type = type;
  }
  const source = cell.model.sharedModel.getSource();
  if (source) {
    context.active_cell = head(source, MAX_CELL_CHARS);
  }
  const editor = cell.editor;
  if (editor) {
    const range = editor.getSelection();
    const start = editor.getOffsetAt(range.start);
    const end = editor.getOffsetAt(range.end);
    if (start !== end) {
      context.selection = head(
        source.slice(Math.min(start, end), Math.max(start, end)),
        MAX_SELECTION_CHARS
      );
    }
  }
  const error = cellError(cell);
  if (error) {
    context.error = tail(error, MAX_ERROR_CHARS);
  }
  return context;
}

/** The traceback of the cell's last error output, as plain text; null if it has none. */
export function cellError(cell: Cell): string | null {
  if (cell.model.type !== 'code') {
    return null;
  }
  const outputs = (cell.model as ICodeCellModel).outputs.toJSON();
  for (let i = outputs.length - 1; i >= 0; i--) {
    const output = outputs[i];
    if (output.output_type === 'error') {
      const traceback = Array.isArray(output.traceback)
        ? (output.traceback as string[]).join('\n')
        : `${output.ename}: ${output.evalue}`;
      return traceback.replace(ANSI_ESCAPE, '');
    }
  }
  return null;
}

/** The parts of the context a chip stands for, each removable on its own. */
export type ContextPart = 'notebook' | 'cell' | 'error' | 'variables';

/**
 * `context` without the removed parts. The notebook chip carries the path and the
 * kernel id; the cell chip the cell's source, position, id and any selection in it.
 */
export function withoutParts(
  context: IChatContext,
  removed: ReadonlySet<ContextPart>
): IChatContext {
  const out: IChatContext = { ...context };
  if (removed.has('notebook')) {
    delete out.notebook_path;
    delete out.kernel_id;
  }
  if (removed.has('cell')) {
    delete out.active_cell;
    delete out.selection;
    delete out.cell_index;
    delete out.cell_id;
    delete out.cell_type;
  }
  if (removed.has('error')) {
    delete out.error;
  }
  if (removed.has('variables')) {
    delete out.variables;
  }
  return out;
}

/** The notebook's cells in order, for `@cell:N` (N counts from 1 over this list). */
export function notebookCells(
  panel: NotebookPanel
): { type: string; source: string }[] {
  return panel.content.widgets.map(cell => ({
    type: cell.model.type,
    source: cell.model.sharedModel.getSource()
  }));
}
