/**
 * Wiring of the index status: the model, the status-bar item, the panel (a Dialog) and
 * the commands rubberduck:index-project and rubberduck:index-panel.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { IStatusBar } from '@jupyterlab/statusbar';

import { IndexBackend } from './backend';
import { IndexStatusModel } from './model';
import { setNoticeCommands } from './notice';
import { IndexPanel, IndexStatusItem } from './view';

export namespace IndexCommandIDs {
  export const indexProject = 'rubberduck:index-project';
  export const indexPanel = 'rubberduck:index-panel';
}

export function activateIndexStatus(
  app: JupyterFrontEnd,
  palette: ICommandPalette | null
): IndexStatusModel {
  const backend = new IndexBackend();
  const model = new IndexStatusModel(backend);
  let dialogOpen = false;

  const openPanel = async (): Promise<void> => {
    if (dialogOpen) {
      return;
    }
    dialogOpen = true;
    const body = new IndexPanel(model, () => backend.folders());
    void model.refresh();
    try {
      await showDialog({
        title: 'Project index',
        body,
        buttons: [Dialog.cancelButton({ label: 'Close' })]
      });
    } finally {
      dialogOpen = false;
      body.dispose();
    }
  };

  app.commands.addCommand(IndexCommandIDs.indexProject, {
    label: 'Index This Project',
    caption:
      'Build or refresh the RubberDuck index of this project (the saved folders, ' +
      'or the whole project), so answers search your notebooks and files',
    execute: async () => {
      try {
        await model.start();
      } catch (error) {
        console.warn('RubberDuck indexing did not start:', error);
        await openPanel(); // the panel shows why, and what to choose instead
      }
    }
  });
  app.commands.addCommand(IndexCommandIDs.indexPanel, {
    label: 'Show the RubberDuck Index Panel',
    caption:
      'Choose the folders to index, re-index or stop, see the last report',
    execute: openPanel
  });
  palette?.addItem({
    command: IndexCommandIDs.indexProject,
    category: 'RubberDuck'
  });
  palette?.addItem({
    command: IndexCommandIDs.indexPanel,
    category: 'RubberDuck'
  });
  setNoticeCommands(app.commands);

  void app.resolveOptionalService(IStatusBar).then(statusBar => {
    if (!statusBar) {
      return;
    }
    const item = new IndexStatusItem(model, () => void openPanel());
    item.id = 'rubberduck-index-status';
    statusBar.registerStatusItem('rubberduck-jupyter:index-status', {
      item,
      align: 'left',
      rank: 900
    });
  });
  void model.refresh();
  return model;
}
