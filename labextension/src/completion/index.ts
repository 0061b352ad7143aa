/**
 * Wiring of inline completion: the provider registered with JupyterLab's inline
 * completer, the client's one socket, the status-bar toggle, the settings and the
 * commands rubberduck:toggle-inline-completion and rubberduck:dismiss-inline-completion
 * (Escape while ghost text shows; schema/plugin.json binds it).
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import {
  ICompletionProviderManager,
  IInlineCompleterFactory
} from '@jupyterlab/completer';
import { URLExt } from '@jupyterlab/coreutils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { CompletionClient, ISocketLike } from './client';
import { GhostTextTracker } from './ghost';
import { RubberDuckInlineProvider } from './provider';
import {
  DEFAULT_COMPLETION_SETTINGS,
  ICompletionSettings,
  readCompletionSettings,
  SETTING_KEYS
} from './settings';
import { CompletionStatusModel } from './status';
import { VariablesCache } from './variables';
import { CompletionStatusItem } from './view';

export namespace CompletionCommandIDs {
  export const toggle = 'rubberduck:toggle-inline-completion';
  export const dismiss = 'rubberduck:dismiss-inline-completion';
}

// The settings live in the main plugin's schema, beside the sidebar's.
const SETTINGS_PLUGIN = 'rubberduck-jupyter:plugin';

async function fetchStatus(
  settings: ServerConnection.ISettings
): Promise<unknown> {
  const url = URLExt.join(
    settings.baseUrl,
    'rubberduck',
    'api',
    'complete',
    'status'
  );
  const response = await ServerConnection.makeRequest(
    url,
    { method: 'GET' },
    settings
  );
  if (response.status === 404) {
    throw new Error(
      'this Jupyter server has no completion endpoint (its rubberduck-jupyter ' +
        'is older than the lab extension: upgrade the server package)'
    );
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const message = (body as { message?: unknown } | null)?.message;
    throw new Error(
      typeof message === 'string'
        ? message
        : `the status request failed (${response.status})`
    );
  }
  return body;
}

export const inlineCompletionPlugin: JupyterFrontEndPlugin<void> = {
  id: 'rubberduck-jupyter:inline-completion',
  description:
    'RubberDuck inline completions (ghost text) in notebook cells and Python files.',
  autoStart: true,
  requires: [ICompletionProviderManager],
  optional: [
    ISettingRegistry,
    INotebookTracker,
    IStatusBar,
    ICommandPalette,
    IInlineCompleterFactory
  ],
  activate: (
    app: JupyterFrontEnd,
    manager: ICompletionProviderManager,
    registry: ISettingRegistry | null,
    notebooks: INotebookTracker | null,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    completerFactory: IInlineCompleterFactory | null
  ) => {
    const server = ServerConnection.makeSettings();
    let values: Readonly<ICompletionSettings> = DEFAULT_COMPLETION_SETTINGS;
    let loaded: ISettingRegistry.ISettings | null = null;
    const status = new CompletionStatusModel(() => fetchStatus(server));
    const client = new CompletionClient({
      url: () => {
        let url = URLExt.join(
          server.wsUrl,
          'rubberduck',
          'api',
          'complete',
          'ws'
        );
        if (server.token) {
          // Cookies authenticate too; the token covers setups where they are blocked.
          url += `?token=${encodeURIComponent(server.token)}`;
        }
        return url;
      },
      createSocket: url => new server.WebSocket(url) as unknown as ISocketLike
    });
    const variables = new VariablesCache();
    const ghosts = new GhostTextTracker();
    if (completerFactory) {
      // After every plugin's activate: JupyterLab's inline completer plugin sets the
      // factory it provides in its own; ours wraps that one (ghost.ts says why).
      void app.restored.then(() =>
        manager.setInlineCompleterFactory(ghosts.wrap(completerFactory))
      );
    }
    /** The editor a notebook panel or a file editor types into. */
    const editorOf = (widget: unknown): unknown =>
      widget instanceof NotebookPanel
        ? widget.content.activeCell?.editor
        : (widget as { content?: { editor?: unknown } } | null)?.content
            ?.editor;
    const provider = new RubberDuckInlineProvider({
      client,
      status,
      settings: () => values,
      variables,
      inline: () => manager.inline,
      clearGhost: widget => ghosts.clear(editorOf(widget))
    });
    manager.registerInlineProvider(provider);

    status.changed.connect(() => {
      if (!status.active) {
        client.stop();
      }
      app.commands.notifyCommandChanged(CompletionCommandIDs.toggle);
    });
    client.notice.connect((_, notice) => {
      Notification.warning(`RubberDuck completion: ${notice.message}`, {
        autoClose: 6_000
      });
    });
    if (notebooks) {
      // A cell ran: its notebook's variables changed; read them for the next completion.
      NotebookActions.executed.connect((_, { notebook }) => {
        const panel = notebooks.find(p => p.content === notebook);
        if (panel) {
          variables.refresh(panel);
        }
      });
    }

    if (registry) {
      void registry
        .load(SETTINGS_PLUGIN)
        .then(settings => {
          loaded = settings;
          const take = (): void => {
            values = readCompletionSettings(
              settings.composite as Record<string, unknown>
            );
            status.userEnabled = values.enabled;
          };
          take();
          settings.changed.connect(take);
        })
        .catch(reason =>
          console.warn('RubberDuck completion settings not loaded:', reason)
        );
    }

    const toggle = async (): Promise<void> => {
      if (status.state === 'unavailable' || status.state === 'checking') {
        await status.refresh(); // the server may have been configured since
        return;
      }
      const next = !status.userEnabled;
      status.userEnabled = next;
      await loaded?.set(SETTING_KEYS.enabled, next);
    };
    app.commands.addCommand(CompletionCommandIDs.toggle, {
      label: 'Inline Completion (RubberDuck)',
      caption:
        'Turn RubberDuck ghost-text completions in notebook cells and Python files on or off',
      isToggled: () => status.state === 'on',
      execute: toggle
    });
    palette?.addItem({
      command: CompletionCommandIDs.toggle,
      category: 'RubberDuck'
    });
    app.commands.addCommand(CompletionCommandIDs.dismiss, {
      label: 'Dismiss Inline Completion',
      caption: 'Hide the ghost text and stop the completion request',
      execute: () => {
        provider.dismiss();
        const editor = editorOf(app.shell.currentWidget);
        if (!ghosts.clear(editor)) {
          // Not a completer built through our factory wrapper: JupyterLab also removes
          // the ghost text when the editor loses focus, and a blur with no new focus
          // target keeps the notebook in edit mode.
          const target = editor as
            { blur?: () => void; focus?: () => void } | undefined;
          target?.blur?.();
          target?.focus?.();
        }
      }
    });

    if (statusBar) {
      const item = new CompletionStatusItem(status, () => void toggle());
      item.id = 'rubberduck-completion-status';
      statusBar.registerStatusItem('rubberduck-jupyter:completion-status', {
        item,
        align: 'left',
        rank: 901
      });
    }
    void status.refresh();
  }
};
