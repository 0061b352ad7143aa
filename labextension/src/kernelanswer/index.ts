/**
 * `%%duck` answers in cell outputs: a rendermime factory for the answer bundle the
 * magic publishes (model.ts says what it holds), so a notebook shows the answer as the
 * sidebar does, with Insert below, Copy, sources, suggestions and Stop.
 *
 * Each notebook renders with a clone of the app's rendermime registry, taken when the
 * notebook is created (NotebookWidgetFactory), so a factory added to the app's registry
 * reaches every notebook opened after this plugin activates; notebooks already open
 * (none, in practice: the layout is restored after plugins activate) get it too.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { PageConfig } from '@jupyterlab/coreutils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { ServerConnection } from '@jupyterlab/services';

import { DuckApi } from '../api';
import { SuggestionActions } from '../suggestion';
import { isSameServer, KERNEL_ANSWER_MIME } from './model';
import { IKernelAnswerServices, KernelAnswerRenderer } from './widget';

export { KERNEL_ANSWER_MIME } from './model';

// Lower ranks win: below Markdown's 60 (and HTML's 50), so the answer is drawn by us and
// its text/markdown is only the fallback for front ends without this extension.
const RANK = 40;

export function kernelAnswerFactory(
  services: IKernelAnswerServices
): IRenderMime.IRendererFactory {
  return {
    // Everything in the bundle is sanitized or set as text: safe for untrusted outputs.
    safe: true,
    defaultRank: RANK,
    mimeTypes: [KERNEL_ANSWER_MIME],
    createRenderer: () => new KernelAnswerRenderer(services)
  };
}

export const kernelAnswerPlugin: JupyterFrontEndPlugin<void> = {
  id: 'rubberduck-jupyter:kernel-answer',
  description: 'Renders %%duck answers in cell outputs.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [INotebookTracker, IEditorLanguageRegistry],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    notebooks: INotebookTracker | null,
    languages: IEditorLanguageRegistry | null
  ) => {
    const serverSettings = ServerConnection.makeSettings();
    const factory = kernelAnswerFactory({
      commands: app.commands,
      notebooks,
      languages,
      suggestions: new SuggestionActions(
        new DuckApi(serverSettings),
        notebooks
      ),
      serverSettings,
      isSameServer: url =>
        isSameServer(url, PageConfig.getBaseUrl(), window.location.href)
    });
    rendermime.addFactory(factory, RANK);
    notebooks?.forEach(panel => {
      const own = panel.content.rendermime;
      if (own !== rendermime && !own.getFactory(KERNEL_ANSWER_MIME)) {
        own.addFactory(factory, RANK);
      }
    });
  }
};
