/**
 * The notebook follows the agent: the cell a step reads, edits or runs is scrolled into
 * view and briefly highlighted, only when its notebook is open and shown, and never by
 * moving the active cell or the focus (the user may be typing in the composer).
 */
import type { INotebookTracker } from '@jupyterlab/notebook';

import type { ICellFocus } from './steps';

export const HIGHLIGHT_CLASS = 'jp-RubberDuck-agentFocus';
// Long enough to catch the eye after the scroll, short enough not to linger.
const HIGHLIGHT_MS = 1_500;

export function followCell(
  notebooks: INotebookTracker | null,
  focus: ICellFocus | null
): void {
  if (!notebooks || !focus) {
    return;
  }
  const panel = notebooks.find(p => p.context.path === focus.path);
  if (!panel || !panel.isVisible) {
    return;
  }
  const cell = panel.content.widgets[focus.index];
  if (!cell) {
    return;
  }
  // scrollToItem, not scrollToCell: that one also activates the cell, which takes the
  // focus (and the active cell) from wherever the user is typing.
  void panel.content.scrollToItem(focus.index, 'smart').then(() => {
    cell.node.classList.add(HIGHLIGHT_CLASS);
    window.setTimeout(
      () => cell.node.classList.remove(HIGHLIGHT_CLASS),
      HIGHLIGHT_MS
    );
  });
}
