/**
 * RubberDuck's inline completion provider for JupyterLab's inline completer
 * (ICompletionProviderManager.registerInlineProvider). JupyterLab owns the ghost text,
 * its keys (Tab or Alt End accept, Alt ] / Alt [ cycle, Alt \ invokes) and calls
 * `fetch` on every keystroke; this class decides what to ask and asks CompletionClient.
 *
 * One fetch:
 * 1. The request in flight is cancelled at once: the user typed again.
 * 2. Not a notebook code cell or a file type of the setting, or real code after the
 *    cursor on its line: nothing.
 * 3. The user is typing into the completion shown, or asked the same before: the cache
 *    answers, with no debounce and no request.
 * 4. Otherwise a keystroke's fetch answers nothing and, once typing has paused for the
 *    debounce, invokes the completer; that fetch (like Alt \) sends one request with
 *    the context and resolves at its first chunk with an incomplete item, and `stream`
 *    yields the text as it grows and then the server's final, trimmed text.
 * A change of the editor's text while a request runs cancels it, also when JupyterLab
 * does not fetch again (a new blank line, a deletion to the line's start).
 */
import type {
  CompletionHandler,
  IInlineCompleterActions,
  IInlineCompletionContext,
  IInlineCompletionItem,
  IInlineCompletionList,
  IInlineCompletionProvider
} from '@jupyterlab/completer';
import { NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import type { ISignal } from '@lumino/signaling';
import type { Widget } from '@lumino/widgets';

import { duckIcon } from '../icon';
import { CompletionCache } from './cache';
import { CompletionClient, PendingCompletion } from './client';
import {
  canCompleteBefore,
  clampLines,
  completionVariables,
  earlierCells,
  fileTypeOf,
  languageOf,
  splitAtCursor,
  wantsMultiline
} from './context';
import { ICompletionSettings } from './settings';
import { CompletionStatusModel } from './status';
import { VariablesCache } from './variables';

export const PROVIDER_ID = 'rubberduck';

// InlineCompletionTriggerKind.Invoke (@jupyterlab/completer): the user pressed Alt \.
const TRIGGER_INVOKE = 0;
const EMPTY: IInlineCompletionList = { items: [] };

/** The part of a cell's or file's shared model read here. */
interface ISharedText {
  getSource(): string;
  readonly changed: ISignal<unknown, unknown>;
}

/** The editor text a completion is for: a notebook cell or a file. */
interface ITarget {
  path: string;
  fileType: string;
  language: string;
  shared: ISharedText | null;
  notebook: NotebookPanel | null;
  activeIndex: number;
}

export interface IProviderOptions {
  client: CompletionClient;
  status: CompletionStatusModel;
  settings: () => Readonly<ICompletionSettings>;
  variables: VariablesCache;
  /**
   * The manager's inline completer actions, once JupyterLab's inline completer plugin
   * has set them up (asked at each fetch); without them the debounce waits in `fetch`.
   */
  inline?: () => IInlineCompleterActions | undefined;
  /** Clear the ghost text shown in the widget's active editor (ghost.ts). */
  clearGhost?: (widget: Widget) => void;
}

export class RubberDuckInlineProvider implements IInlineCompletionProvider {
  readonly identifier = PROVIDER_ID;
  readonly name = 'RubberDuck';
  readonly icon = duckIcon;
  /**
   * Defaults for JupyterLab's own per-provider settings (Settings Editor > Inline
   * Completer). Debounce is RubberDuck's setting, so JupyterLab's is 0. Completing
   * before an auto-closed bracket needs autoFillInMiddle; `fetch` itself refuses real
   * code after the cursor. The timeout covers our debounce and the first chunk.
   */
  readonly schema: ISettingRegistry.IProperty = {
    default: { debouncerDelay: 0, autoFillInMiddle: true, timeout: 10_000 }
  };

  constructor(options: IProviderOptions) {
    this._client = options.client;
    this._status = options.status;
    this._settings = options.settings;
    this._variables = options.variables;
    this._inline = options.inline ?? (() => undefined);
    this._clearGhost = options.clearGhost ?? null;
  }

  get cache(): CompletionCache {
    return this._cache;
  }

  async fetch(
    request: CompletionHandler.IRequest,
    context: IInlineCompletionContext
  ): Promise<IInlineCompletionList> {
    const generation = ++this._generation;
    clearTimeout(this._debounce);
    const running = this._client.current;
    if (running?.state === 'streaming') {
      // What it showed so far stays good for typing along it.
      const q = running.query;
      this._cache.putShown(
        q.path,
        q.prefix,
        q.suffix,
        clampLines(running.text, q.maxLines)
      );
    }
    this._client.cancelCurrent();
    const settings = this._settings();
    if (!this._status.active) {
      return EMPTY;
    }
    const target = targetOf(context.widget, request);
    if (
      !target ||
      !target.language ||
      !settings.fileTypes.includes(target.fileType)
    ) {
      return EMPTY;
    }
    const { prefix, suffix } = splitAtCursor(request.text, request.offset);
    if (!prefix.trim() || !canCompleteBefore(suffix)) {
      return EMPTY;
    }
    const known =
      this._cache.continuation(target.path, prefix, suffix) ??
      this._cache.get(target.path, prefix, suffix);
    if (known) {
      return { items: [{ insertText: known }] };
    }
    // Whatever ghost text shows was for other text: it goes now, not at the next answer.
    // Deferred: JupyterLab fetches inside CodeMirror's update, which must not dispatch.
    if (this._clearGhost) {
      const clear = this._clearGhost;
      setTimeout(() => {
        if (generation === this._generation) {
          clear(context.widget);
        }
      }, 0);
    }
    if (known === '') {
      return EMPTY; // asked here before: nothing fits
    }
    if (context.triggerKind !== TRIGGER_INVOKE && settings.debounceMs > 0) {
      const actions = this._inline();
      if (actions) {
        // Answer nothing now and invoke the completer once typing pauses. The empty
        // answer matters: JupyterLab keeps showing a ghost text that the keystroke
        // no longer matches until the next answer comes, so waiting here would show
        // stale text for the whole debounce.
        const widget = context.widget;
        this._debounce = setTimeout(() => {
          if (
            generation === this._generation &&
            (!target.shared || target.shared.getSource() === request.text) &&
            widget.node.contains(document.activeElement)
          ) {
            actions.invoke(widget.id);
          }
        }, settings.debounceMs);
        return EMPTY;
      }
      await new Promise(resolve => setTimeout(resolve, settings.debounceMs));
      if (generation !== this._generation) {
        return EMPTY; // a newer keystroke fetches instead
      }
    }
    if (target.shared && target.shared.getSource() !== request.text) {
      return EMPTY; // the text moved on without a new fetch
    }
    const pending = this._client.complete({
      path: target.path,
      language: target.language,
      prefix,
      suffix,
      cells: target.notebook
        ? earlierCells(cellsOf(target.notebook), target.activeIndex)
        : [],
      variables:
        target.notebook && settings.sendVariables
          ? completionVariables(this._variables.known(target.notebook))
          : [],
      multiline: wantsMultiline(suffix),
      maxLines: settings.maxLines
    });
    this._cancelOnEdit(pending, target.shared, request.text);
    while (pending.state === 'waiting') {
      await pending.changed();
    }
    if (pending.state === 'ended') {
      return EMPTY;
    }
    if (pending.state === 'done') {
      const text = clampLines(pending.text, settings.maxLines);
      this._cache.put(target.path, prefix, suffix, text);
      return text ? { items: [{ insertText: text }] } : EMPTY;
    }
    // JupyterLab streams only the items it still shows: forget the ones it dropped.
    for (const [token, stream] of this._streams) {
      if (stream.pending.finished) {
        this._streams.delete(token);
      }
    }
    this._streams.set(pending.id, {
      pending,
      path: target.path,
      prefix,
      suffix
    });
    return {
      items: [
        {
          insertText: clampLines(pending.text, settings.maxLines),
          isIncomplete: true,
          token: pending.id
        }
      ]
    };
  }

  async *stream(
    token: string
  ): AsyncGenerator<{ response: IInlineCompletionItem }> {
    const stream = this._streams.get(token);
    if (!stream) {
      return;
    }
    this._streams.delete(token);
    const { pending } = stream;
    for await (const text of pending.updates()) {
      if (pending.state === 'ended') {
        return; // cancelled: JupyterLab has dropped this item already
      }
      const shown = clampLines(text, this._settings().maxLines);
      if (pending.state === 'done') {
        this._cache.put(stream.path, stream.prefix, stream.suffix, shown);
      }
      yield {
        response: {
          insertText: shown,
          isIncomplete: pending.state !== 'done'
        }
      };
    }
  }

  /** Escape: stop the request and keep typing from bringing the shown text back. */
  dismiss(): void {
    this._generation += 1;
    clearTimeout(this._debounce);
    this._client.cancelCurrent();
    this._cache.dismissShown();
  }

  /** Cancels `pending` when the editor's text stops being `text`. */
  private _cancelOnEdit(
    pending: PendingCompletion,
    shared: ISharedText | null,
    text: string
  ): void {
    if (!shared) {
      return;
    }
    const onChange = (): void => {
      if (pending.finished) {
        shared.changed.disconnect(onChange);
      } else if (shared.getSource() !== text) {
        shared.changed.disconnect(onChange);
        if (this._client.current === pending) {
          this._client.cancelCurrent();
        }
      }
    };
    shared.changed.connect(onChange);
    void (async () => {
      while (!pending.finished) {
        await pending.changed();
      }
      shared.changed.disconnect(onChange);
    })();
  }

  private _client: CompletionClient;
  private _status: CompletionStatusModel;
  private _settings: () => Readonly<ICompletionSettings>;
  private _variables: VariablesCache;
  private _cache = new CompletionCache();
  private _generation = 0;
  private _inline: () => IInlineCompleterActions | undefined;
  private _clearGhost: ((widget: Widget) => void) | null;
  private _debounce: ReturnType<typeof setTimeout> | undefined = undefined;
  private _streams = new Map<
    string,
    { pending: PendingCompletion; path: string; prefix: string; suffix: string }
  >();
}

/** The notebook cell or file the completer was invoked in, or null. */
function targetOf(
  widget: Widget,
  request: CompletionHandler.IRequest
): ITarget | null {
  if (widget instanceof NotebookPanel) {
    const cell = widget.content.activeCell;
    if (!cell || cell.model.type !== 'code') {
      return null;
    }
    const path = widget.context.path;
    return {
      path,
      fileType: 'notebook',
      language: languageOf(path, request.mimeType ?? cell.model.mimeType),
      shared: cell.model.sharedModel as unknown as ISharedText,
      notebook: widget,
      activeIndex: widget.content.activeCellIndex
    };
  }
  // A document widget with an editor (the file editor), duck-typed so the file editor
  // package is not a dependency.
  const doc = widget as unknown as {
    context?: { path?: unknown };
    content?: { model?: { sharedModel?: unknown; mimeType?: string } };
  };
  const path = doc.context?.path;
  if (typeof path !== 'string' || !doc.content?.model) {
    return null;
  }
  const mime = request.mimeType ?? doc.content.model.mimeType;
  return {
    path,
    fileType: fileTypeOf(false, path, mime),
    language: languageOf(path, mime),
    shared: (doc.content.model.sharedModel as ISharedText) ?? null,
    notebook: null,
    activeIndex: 0
  };
}

function cellsOf(
  panel: NotebookPanel
): { cell_type: string; source: string }[] {
  const cells = panel.content.model?.cells;
  if (!cells) {
    return [];
  }
  const out: { cell_type: string; source: string }[] = [];
  // Only the cells before the active one are read.
  const end = Math.min(cells.length, panel.content.activeCellIndex);
  for (let i = 0; i < end; i++) {
    const cell = cells.get(i);
    out.push({ cell_type: cell.type, source: cell.sharedModel.getSource() });
  }
  return out;
}
