import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import type { Cell } from '@jupyterlab/cells';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { DuckApi } from './api';
import { activateContext } from './chips';
import { DuckConnection } from './connection';
import { cellError } from './context';
import { FixErrorWatcher } from './fixerror';
import { activateIndexStatus } from './indexstatus';
import { kernelAnswerPlugin } from './kernelanswer';
import { duckIcon } from './icon';
import { offerAllowedModels } from './modelchoices';
import { activateCellReview } from './cellreview';
import { inlineCompletionPlugin } from './completion';
import { ChatPanel } from './panel';
import { DuckSettings } from './settings';

export namespace CommandIDs {
  export const openChat = 'rubberduck:open-chat';
  export const fixError = 'rubberduck:fix-error';
  export const openConversations = 'rubberduck:open-conversations';
}

const PANEL_ID = 'rubberduck-chat';

// Keyboard shortcuts live in schema/plugin.json so users can remap them: Accel Alt D
// opens the chat (Accel Shift D is JupyterLab's simple-interface toggle), Accel Alt F
// fixes the active cell's error.
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'rubberduck-jupyter:plugin',
  description: 'The RubberDuck chat sidebar.',
  autoStart: true,
  optional: [
    ICommandPalette,
    ILayoutRestorer,
    INotebookTracker,
    ISettingRegistry,
    IEditorLanguageRegistry
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    notebooks: INotebookTracker | null,
    registry: ISettingRegistry | null,
    languages: IEditorLanguageRegistry | null
  ) => {
    // Defaults until the registry answers; every surface follows `settings.changed`.
    const settings = new DuckSettings();
    const api = new DuckApi();
    // The schema asks the registry to wait for this transform (the allowed models as the
    // default model's choices), so it is registered before the settings load.
    const transformed = registry
      ? offerAllowedModels(registry, plugin.id, () => api.listModels())
      : Promise.resolve();
    transformed
      .then(() => registry?.load(plugin.id))
      .then(loaded => loaded && settings.follow(loaded))
      .catch(reason => console.warn('RubberDuck settings not loaded:', reason));
    const connection = new DuckConnection();
    const panel = new ChatPanel({
      connection,
      api,
      notebooks,
      commands: app.commands,
      settings,
      languages
    });
    panel.id = PANEL_ID;
    activateContext(panel.contextBar, settings);
    panel.title.icon = duckIcon;
    panel.title.caption = 'RubberDuck';
    panel.disposed.connect(() => connection.dispose());

    app.shell.add(panel, 'right', { rank: 1000 });
    restorer?.add(panel, PANEL_ID);

    const openPanel = (): void => {
      app.shell.activateById(PANEL_ID);
      // The command palette hands focus back to the main area as it closes, after
      // this runs; focusing on the next frame keeps the caret in the chat box.
      requestAnimationFrame(() => panel.focusInput());
    };

    app.commands.addCommand(CommandIDs.openChat, {
      label: 'Open RubberDuck Chat',
      caption: 'Open the RubberDuck chat sidebar',
      icon: duckIcon,
      execute: openPanel
    });
    palette?.addItem({ command: CommandIDs.openChat, category: 'RubberDuck' });
    app.commands.addCommand(CommandIDs.openConversations, {
      label: 'Open RubberDuck Conversations',
      caption:
        'Open the RubberDuck conversation list (arrows move, Enter opens)',
      execute: () => {
        app.shell.activateById(PANEL_ID);
        requestAnimationFrame(() => panel.openConversations());
      }
    });
    palette?.addItem({
      command: CommandIDs.openConversations,
      category: 'RubberDuck'
    });

    /** The notebook and cell the command is about: the active cell, if it failed. */
    const failedCell = (): { notebook: NotebookPanel; cell: Cell } | null => {
      const notebook = notebooks?.currentWidget;
      const cell = notebook?.content.activeCell;
      if (!notebook || !cell || cell.isDisposed || cellError(cell) === null) {
        return null;
      }
      return { notebook, cell };
    };
    const activeCellHasError = (): boolean => failedCell() !== null;
    app.commands.addCommand(CommandIDs.fixError, {
      label: args =>
        args.toolbar ? 'Fix with RubberDuck' : 'Fix This Error with RubberDuck',
      caption:
        'Ask RubberDuck to fix the error of the active cell (its traceback, ' +
        'source and the kernel variables go along)',
      icon: args => (args.toolbar ? duckIcon : undefined),
      isEnabled: activeCellHasError,
      // The cell toolbar shows the button only on a cell whose last run failed.
      isVisible: args => (args.toolbar ? activeCellHasError() : true),
      execute: async () => {
        const target = failedCell();
        if (!target) {
          return;
        }
        openPanel();
        await panel.fixCellError(target.notebook, target.cell);
      }
    });
    palette?.addItem({ command: CommandIDs.fixError, category: 'RubberDuck' });
    app.contextMenu.addItem({
      command: CommandIDs.fixError,
      selector: '.jp-Notebook .jp-CodeCell',
      rank: 12
    });
    activateIndexStatus(app, palette);
    activateCellReview(app, notebooks, settings, palette, api);
    if (notebooks) {
      // Enabled state (and the cell toolbar button) follow the active cell's outputs.
      new FixErrorWatcher(notebooks, () =>
        app.commands.notifyCommandChanged(CommandIDs.fixError)
      );
    }
  }
};

export default [plugin, kernelAnswerPlugin, inlineCompletionPlugin];
