/**
 * Runs the cell an approval names, in the user's own notebook and kernel: finds the
 * notebook (opening it when it is not open), applies the turn's pending suggestions on
 * that cell first, checks the cell still holds the code the user approved, runs it with
 * JupyterLab's CodeCell.execute (so its outputs appear in the notebook as for any run)
 * and reads its outputs back as a run_result (runresult.ts), then saves the notebook
 * (the agent's tools read it from disk). Interrupts go to the notebook's kernel.
 */
import { CodeCell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { CommandRegistry } from '@lumino/commands';

import type { IApprovalFrame } from '../protocol';
import { notRun, NotebookOutput, runResult, RunResult } from './runresult';

export interface IRunnerServices {
  notebooks: INotebookTracker | null;
  commands: CommandRegistry | null;
}

/** Applies one pending suggestion of the turn (its card's own apply path). */
export type ApplySuggestion = (id: string) => Promise<void>;

// A source compared as the agent and the notebook both hold it: trailing blanks aside.
const normalised = (text: string): string => text.replace(/\s+$/, '');

export class CellRunner {
  constructor(private readonly _services: IRunnerServices) {}

  async run(
    frame: IApprovalFrame,
    applySuggestion: ApplySuggestion
  ): Promise<RunResult> {
    const panel = await this._notebook(frame.path);
    if (!panel) {
      return notRun(
        'NotebookNotOpen',
        `Could not open ${frame.path ?? 'the notebook'} to run the cell.`
      );
    }
    for (const id of frame.suggestion_ids) {
      try {
        await applySuggestion(id);
      } catch (error) {
        return notRun(
          'SuggestionNotApplied',
          `The suggestion ${id} on this cell could not be applied first: ${(error as Error).message}`
        );
      }
    }
    const cell = findCodeCell(panel, frame);
    if (!cell) {
      return notRun(
        'CellNotFound',
        `Cell ${frame.cell_index ?? '?'} is not a code cell of ${panel.context.path} any more.`
      );
    }
    if (
      normalised(cell.model.sharedModel.getSource()) !==
      normalised(frame.source)
    ) {
      // The user approved running the code shown; anything else is not run.
      return notRun(
        'CellChanged',
        `Cell ${frame.cell_index ?? '?'} no longer holds the code that was approved; it was not run.`
      );
    }
    await panel.sessionContext.ready;
    if (!panel.sessionContext.session?.kernel) {
      return notRun('NoKernel', `${panel.context.path} has no running kernel.`);
    }
    let reply: Awaited<ReturnType<typeof CodeCell.execute>>;
    try {
      reply = await CodeCell.execute(cell, panel.sessionContext);
    } catch (error) {
      // CodeCell.execute rethrows a cancelled execution (the kernel restarted).
      return notRun('RunFailed', (error as Error)?.message ?? String(error));
    }
    const outputs = cell.model.outputs.toJSON() as unknown as NotebookOutput[];
    const status = reply ? String(reply.content.status) : null;
    await saveForTheAgent(panel);
    return runResult(outputs, status, cell.model.executionCount ?? null);
  }

  async interrupt(frame: IApprovalFrame): Promise<RunResult> {
    const panel = await this._notebook(frame.path);
    const kernel = panel?.sessionContext.session?.kernel;
    if (!kernel) {
      return notRun(
        'NoKernel',
        `${frame.path ?? 'The notebook'} has no running kernel.`
      );
    }
    await kernel.interrupt();
    return { status: 'ok', execution_count: null, outputs: [], error: null };
  }

  /** The notebook at `path`, opened (without taking the focus) when it is not open. */
  private async _notebook(path: string | null): Promise<NotebookPanel | null> {
    const { notebooks, commands } = this._services;
    if (!notebooks) {
      return null;
    }
    if (path === null) {
      return notebooks.currentWidget;
    }
    let panel = notebooks.find(p => p.context.path === path) ?? null;
    if (!panel && commands) {
      const opened = await commands.execute('docmanager:open', {
        path,
        factory: 'Notebook',
        options: { activate: false }
      });
      panel =
        notebooks.find(p => p.context.path === path) ??
        (opened as NotebookPanel | null);
    }
    if (panel) {
      await panel.context.ready;
    }
    return panel ?? null;
  }
}

/**
 * The agent's tools read the notebook from disk: after a run (and the edits applied
 * before it) the file is saved, so the next list_cells or replace_cell sees the cells
 * and outputs the user sees. A failed save is not the run's failure: the run happened.
 */
async function saveForTheAgent(panel: NotebookPanel): Promise<void> {
  if (!panel.context.model.dirty) {
    return;
  }
  try {
    await panel.context.save();
  } catch (error) {
    console.warn(
      'RubberDuck: the notebook could not be saved after a run',
      error
    );
  }
}

/** The approval's cell: by id (cells move), else by its 1-based index. */
function findCodeCell(
  panel: NotebookPanel,
  frame: IApprovalFrame
): CodeCell | null {
  const widgets = panel.content.widgets;
  let cell = frame.cell_id
    ? widgets.find(w => w.model.id === frame.cell_id)
    : undefined;
  if (!cell && frame.cell_index !== null) {
    cell = widgets[frame.cell_index - 1];
  }
  return cell instanceof CodeCell ? cell : null;
}
