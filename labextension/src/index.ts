import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';

import { DuckConnection } from './connection';
import { duckIcon } from './icon';
import { ChatPanel } from './panel';

export namespace CommandIDs {
  export const openChat = 'rubberduck:open-chat';
}

const PANEL_ID = 'rubberduck-chat';

// The keyboard shortcut (Accel Alt D) lives in schema/plugin.json so users can remap it;
// Accel Shift D is taken by JupyterLab's simple-interface toggle.
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'rubberduck-jupyter:plugin',
  description: 'The RubberDuck chat sidebar.',
  autoStart: true,
  optional: [ICommandPalette, ILayoutRestorer, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    notebooks: INotebookTracker | null
  ) => {
    const connection = new DuckConnection();
    const panel = new ChatPanel({ connection, notebooks });
    panel.id = PANEL_ID;
    panel.title.icon = duckIcon;
    panel.title.caption = 'RubberDuck';
    panel.disposed.connect(() => connection.dispose());

    app.shell.add(panel, 'right', { rank: 1000 });
    restorer?.add(panel, PANEL_ID);

    app.commands.addCommand(CommandIDs.openChat, {
      label: 'Open RubberDuck Chat',
      caption: 'Open the RubberDuck chat sidebar',
      icon: duckIcon,
      execute: () => {
        app.shell.activateById(PANEL_ID);
        // The command palette hands focus back to the main area as it closes, after
        // this runs; focusing on the next frame keeps the caret in the chat box.
        requestAnimationFrame(() => panel.focusInput());
      }
    });
    palette?.addItem({ command: CommandIDs.openChat, category: 'RubberDuck' });
  }
};

export default plugin;
