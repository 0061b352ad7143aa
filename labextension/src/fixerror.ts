/**
 * Keeps "Fix this error" current: whether it is enabled (and whether the cell toolbar
 * shows its button) depends on the active cell's outputs, which change as it runs.
 */
import type { Cell, ICodeCellModel } from '@jupyterlab/cells';
import type { INotebookTracker } from '@jupyterlab/notebook';

import type { IChatContext } from './protocol';

export class FixErrorWatcher {
  constructor(
    tracker: INotebookTracker,
    private readonly _changed: () => void
  ) {
    tracker.activeCellChanged.connect(this._onActiveCell, this);
    this._onActiveCell(tracker, tracker.activeCell);
  }

  private _onActiveCell(_: INotebookTracker, cell: Cell | null): void {
    this._outputs?.changed.disconnect(this._onOutputs, this);
    this._outputs = null;
    if (cell && !cell.isDisposed && cell.model.type === 'code') {
      this._outputs = (cell.model as ICodeCellModel).outputs;
      this._outputs.changed.connect(this._onOutputs, this);
    }
    this._changed();
  }

  private _onOutputs(): void {
    this._changed();
  }

  private _outputs: ICodeCellModel['outputs'] | null = null;
}

/** What "Fix this error" says it sends: "Fix the KeyError in cell 2". */
export function fixRequestText(context: IChatContext): string {
  const names = context.error?.match(
    /\b[A-Z]\w*(?:Error|Exception|Warning|Interrupt|Exit)\b/g
  );
  const what = names?.length ? `the ${names[names.length - 1]}` : 'the error';
  const where =
    context.cell_index !== undefined && context.cell_index !== null
      ? ` in cell ${context.cell_index + 1}`
      : '';
  return `Fix ${what}${where}`;
}
