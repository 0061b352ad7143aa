/**
 * What the next message will carry, shown as chips above the message box, and the `@`
 * completion list. The panel owns the box; this owns the chips, the list and the rule
 * that decides the frame's context (`gather`): a removed chip's context is not sent.
 *
 * Chips: the notebook, the active cell (or the selection in it), the cell's last error,
 * the kernel variables (on by default as the `sendVariables` setting says, live), and one
 * per `@` mention in the text. A chip is removed with its x button, or Backspace/Delete
 * while it has focus; a mention chip's removal takes the mention out of the text. Removed
 * context chips come back after the message is sent: a removal is for one message.
 */
import type { Cell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { URLExt } from '@jupyterlab/coreutils';
import type { IDisposable } from '@lumino/disposable';
import { Signal } from '@lumino/signaling';

import {
  cellError,
  ContextPart,
  currentNotebook,
  notebookCells,
  notebookContext,
  withoutParts
} from './context';
import { button, element } from './dom';
import { FileCrawl } from './filecrawl';
import { describeVariables, kernelVariables } from './kernelvars';
import { Listbox } from './listbox';
import {
  acceptCompletion,
  completions,
  distinctMentions,
  folderOf,
  ICompletionItem,
  ICompletionSources,
  mentionLabel,
  MentionToken,
  parseMentions,
  removeMention,
  typedMention
} from './mentions';
import {
  IChatContext,
  IMention,
  MAX_MENTIONS,
  MAX_MENTION_SOURCE
} from './protocol';
import type { DuckSettings, IDuckSettingsValues } from './settings';

interface IChip {
  /** A context part, or "mention" for an @ chip. */
  part: ContextPart | 'mention';
  kind: string;
  label: string;
  title: string;
}

// The completion list's kernel variables and folder listings are asked for once per
// this long: typing on should not send the kernel a request per key.
const SOURCES_TTL_MS = 5_000;
const MAX_LISTED_FILES = 500;

export class ContextBar implements IDisposable {
  /** The chips row, then the completion list; the panel puts it above the box. */
  readonly node: HTMLElement;

  constructor(options: ContextBar.IOptions) {
    this._input = options.input;
    this._notebooks = options.notebooks ?? null;
    this.node = element('div', 'jp-RubberDuck-contextbar');
    this._chips = element('div', 'jp-RubberDuck-chips');
    this._chips.setAttribute('role', 'list');
    this._chips.setAttribute(
      'aria-label',
      'Context sent with your next message'
    );
    this._list = new Listbox<ICompletionItem>({
      input: this._input,
      className: 'jp-RubberDuck-mentions',
      label: 'Mentions',
      optionClass: item =>
        `jp-RubberDuck-mention-option jp-RubberDuck-mention-${item.kind}`,
      fill: (option, item) => {
        option.dataset.insert = item.insert;
        option.append(
          element('span', 'jp-RubberDuck-mention-label', `@${item.label}`),
          element('span', 'jp-RubberDuck-mention-detail', item.detail)
        );
        option.title = `${item.label} (${item.detail})`;
      },
      key: item => item.insert,
      accept: item => this._accept(item),
      // "@cell:1" typed in full: Enter sends the message, as it would anyway.
      typedExactly: item =>
        typedMention(this._input.value, this._input.selectionStart ?? 0)
          ?.query === item.insert
    });
    // The list above the chips: the footer grows upwards, so the list opening or closing
    // never moves a chip under the pointer.
    this.node.append(this._list.node, this._chips);

    this._chips.addEventListener('click', this._onChipClick);
    // Pressing x must not blur the box first (that closes the list mid-click).
    this._chips.addEventListener('mousedown', event => {
      if ((event.target as HTMLElement).closest('.jp-RubberDuck-chip-remove')) {
        event.preventDefault();
      }
    });
    this._chips.addEventListener('keydown', this._onChipKey);
    this._input.addEventListener('input', this._onInput);
    this._input.addEventListener('focus', this._onFocus);
    this._input.addEventListener('blur', this._onBlur);
    this._input.addEventListener('click', this._onInput);

    this._notebooks?.currentChanged.connect(this._onActiveChanged, this);
    this._notebooks?.activeCellChanged.connect(this._onActiveChanged, this);
    this._onActiveChanged();
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._crawl.cancel();
    this._watchCell(null);
    this._input.removeEventListener('input', this._onInput);
    this._input.removeEventListener('focus', this._onFocus);
    this._input.removeEventListener('blur', this._onBlur);
    this._input.removeEventListener('click', this._onInput);
    Signal.clearData(this);
  }

  /** Follows the settings: `sendVariables` sets whether the variables chip is on. */
  follow(settings: DuckSettings): void {
    const take = (_: unknown, values: Readonly<IDuckSettingsValues>): void => {
      this._variablesOn = values.sendVariables;
      this._removed.delete('variables');
      this.refresh();
    };
    take(settings, settings.values);
    settings.changed.connect(take, this);
  }

  /** The mention list is open. */
  get isOpen(): boolean {
    return this._list.isOpen;
  }

  /** Keys in the box while the list is open; true when the key was the list's. */
  handleKey(event: KeyboardEvent): boolean {
    return this._list.handleKey(event);
  }

  /**
   * The context of a message with `text`, without what the user removed: the chips'
   * parts, the kernel variables if their chip is on, and each `@` mention resolved
   * (variables described by the kernel, cells read from the notebook, files by path).
   */
  async gather(text: string): Promise<IChatContext> {
    const panel = currentNotebook(this._notebooks);
    const context = withoutParts(
      notebookContext(this._notebooks),
      this._removed
    );
    if (panel && this._variablesOn && !this._removed.has('variables')) {
      const variables = await kernelVariables(panel);
      if (variables?.length) {
        context.variables = variables;
      }
    }
    const mentions = await this._resolve(panel, parseMentions(text));
    if (mentions.length) {
      context.mentions = mentions;
    }
    return context;
  }

  /** The message went: removed context chips come back for the next one. */
  sent(): void {
    this._removed.clear();
    this.refresh();
  }

  /** Redraw the chips for the active notebook, cell and the text in the box. */
  refresh(): void {
    if (this._disposed) {
      return;
    }
    const focused = document.activeElement as HTMLElement | null;
    const focusedKey = this._chips.contains(focused)
      ? focused?.closest<HTMLElement>('.jp-RubberDuck-chip')?.dataset.key
      : undefined;
    const chips = this._contextChips().concat(this._mentionChips());
    this._chips.replaceChildren(...chips.map(chip => this._chipNode(chip)));
    this._chips.hidden = !chips.length;
    if (focusedKey) {
      this._chips
        .querySelector<HTMLElement>(`[data-key="${CSS.escape(focusedKey)}"]`)
        ?.focus();
    }
  }

  // --- chips ------------------------------------------------------------------------

  private _contextChips(): IChip[] {
    const panel = currentNotebook(this._notebooks);
    if (!panel) {
      return [];
    }
    const chips: IChip[] = [];
    const removed = this._removed;
    const name = panel.context.localPath.split('/').pop() ?? panel.context.path;
    if (!removed.has('notebook')) {
      chips.push({
        part: 'notebook',
        kind: 'Notebook',
        label: name,
        title: `The notebook's path: ${panel.context.path}`
      });
    }
    const cell = panel.content.activeCell;
    const context = notebookContext(this._notebooks);
    if (cell && !cell.isDisposed) {
      const number = panel.content.widgets.indexOf(cell) + 1;
      if (!removed.has('cell') && (context.active_cell || context.selection)) {
        chips.push(
          context.selection
            ? {
                part: 'cell',
                kind: 'Selection',
                label: `in cell ${number}`,
                title: `The selected text (${context.selection.length} characters) and its cell`
              }
            : {
                part: 'cell',
                kind: 'Cell',
                label: String(number),
                title: `The active cell's source (cell ${number})`
              }
        );
      }
      const error = cellError(cell);
      if (error && !removed.has('error')) {
        const last = error.trim().split('\n').pop() ?? '';
        chips.push({
          part: 'error',
          kind: 'Error',
          label: last.length > 40 ? last.slice(0, 39) + '…' : last,
          title: "The traceback of the active cell's last error"
        });
      }
    }
    if (this._variablesOn && !removed.has('variables')) {
      chips.push({
        part: 'variables',
        kind: 'Kernel',
        label: 'variables',
        title:
          "The names, types and shapes of the kernel's variables (no values)"
      });
    }
    return chips;
  }

  private _mentionChips(): IChip[] {
    return distinctMentions(parseMentions(this._input.value)).map(token => ({
      part: 'mention',
      kind: '',
      label: mentionLabel(token),
      title: mentionTitle(token)
    }));
  }

  private _chipNode(chip: IChip): HTMLElement {
    const key = chip.part === 'mention' ? `mention:${chip.label}` : chip.part;
    const spoken = chip.kind ? `${chip.kind} ${chip.label}` : chip.label;
    const node = element(
      'span',
      `jp-RubberDuck-chip jp-RubberDuck-chip-${chip.part}`
    );
    node.setAttribute('role', 'listitem');
    node.tabIndex = 0;
    node.dataset.key = key;
    node.dataset.label = chip.label;
    node.title = `${chip.title}. Delete or Backspace removes it.`;
    node.setAttribute('aria-label', spoken);
    if (chip.kind) {
      node.append(element('span', 'jp-RubberDuck-chip-kind', chip.kind));
    }
    node.append(element('span', 'jp-RubberDuck-chip-label', chip.label));
    const remove = button(
      'jp-RubberDuck-chip-remove',
      `Remove ${spoken} from the context`,
      '×'
    );
    // The chip itself takes focus; one Tab stop per chip, not two.
    remove.tabIndex = -1;
    node.append(remove);
    return node;
  }

  private _onChipClick = (event: MouseEvent): void => {
    const target = event.target as HTMLElement;
    if (!target.closest('.jp-RubberDuck-chip-remove')) {
      return;
    }
    const chip = target.closest<HTMLElement>('.jp-RubberDuck-chip');
    if (chip) {
      this._remove(chip, false);
    }
  };

  private _onChipKey = (event: KeyboardEvent): void => {
    const chip = (event.target as HTMLElement).closest<HTMLElement>(
      '.jp-RubberDuck-chip'
    );
    if (!chip) {
      return;
    }
    if (event.key === 'Backspace' || event.key === 'Delete') {
      event.preventDefault();
      event.stopPropagation();
      this._remove(chip, true);
    } else if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
      event.preventDefault();
      const sibling =
        event.key === 'ArrowRight'
          ? chip.nextElementSibling
          : chip.previousElementSibling;
      (sibling as HTMLElement | null)?.focus();
    }
  };

  private _remove(chip: HTMLElement, byKey: boolean): void {
    const key = chip.dataset.key ?? '';
    const chips = Array.from(this._chips.children);
    const index = chips.indexOf(chip);
    if (key.startsWith('mention:')) {
      const input = this._input;
      input.value = removeMention(input.value, chip.dataset.label ?? '');
    } else {
      this._removed.add(key as ContextPart);
    }
    this.refresh();
    if (byKey) {
      // Focus stays in the row (the chip that took this one's place), else the box.
      const next = (this._chips.children[index] ??
        this._chips.children[index - 1]) as HTMLElement | undefined;
      (next ?? this._input).focus();
    } else {
      this._input.focus();
    }
  }

  // --- live updates -----------------------------------------------------------------

  private _onActiveChanged(): void {
    const panel = currentNotebook(this._notebooks);
    const cell = panel?.content.activeCell ?? null;
    this._watchCell(cell && !cell.isDisposed ? cell : null);
    this.refresh();
  }

  /** The active cell's outputs (its error chip) and selection change the chips too. */
  private _watchCell(cell: Cell | null): void {
    if (this._watched === cell) {
      return;
    }
    const previous = this._watched;
    // A cell widget can outlive its model (a cell moved or replaced in the notebook): a
    // disposed model has cleared its signals already and its selections are null.
    if (previous && !previous.isDisposed && !previous.model.isDisposed) {
      previous.model.contentChanged.disconnect(this._onCellChanged, this);
      previous.model.selections.changed.disconnect(this._onCellChanged, this);
      if (previous.model.type === 'code') {
        (previous.model as ICodeModel).outputs.changed.disconnect(
          this._onCellChanged,
          this
        );
      }
    }
    this._watched = cell;
    if (cell && !cell.model.isDisposed) {
      cell.model.contentChanged.connect(this._onCellChanged, this);
      cell.model.selections.changed.connect(this._onCellChanged, this);
      if (cell.model.type === 'code') {
        (cell.model as ICodeModel).outputs.changed.connect(
          this._onCellChanged,
          this
        );
      }
    }
  }

  // Typing in a cell fires per key: redraw once per frame at most.
  private _onCellChanged(): void {
    if (this._pending) {
      return;
    }
    this._pending = requestAnimationFrame(() => {
      this._pending = 0;
      this.refresh();
    });
  }

  private _onFocus = (): void => this.refresh();

  private _onBlur = (): void => this._list.close();

  private _onInput = (): void => {
    this.refresh();
    void this._updateList();
  };

  // --- the @ list -------------------------------------------------------------------

  private async _updateList(): Promise<void> {
    const input = this._input;
    const caret = input.selectionStart ?? 0;
    const typed =
      input.selectionStart === input.selectionEnd
        ? typedMention(input.value, caret)
        : null;
    if (!typed) {
      this._list.close();
      return;
    }
    const sources = await this._sources(typed.query);
    // The text may have moved on while the kernel or the contents API answered.
    const now = typedMention(input.value, input.selectionStart ?? 0);
    if (!now || now.start !== typed.start || now.query !== typed.query) {
      return;
    }
    this._start = typed.start;
    const items = completions(typed.query, sources);
    // Nothing yet, but the walk of the subfolders may still find it.
    this._waitingForFiles = !items.length && this._crawl.running;
    this._list.show(items);
  }

  /** The walk found more files: the list shows them if it is (or would be) open. */
  private _onFilesFound(): void {
    if (
      document.activeElement === this._input &&
      (this._list.isOpen || this._waitingForFiles)
    ) {
      void this._updateList();
    }
  }

  private async _sources(query: string): Promise<ICompletionSources> {
    const panel = currentNotebook(this._notebooks);
    const now = Date.now();
    if (!this._variables || now - this._variables.at > SOURCES_TTL_MS) {
      const variables = panel ? await kernelVariables(panel) : null;
      this._variables = {
        at: Date.now(),
        list: (variables ?? []).map(v => ({ name: v.name, type: v.type }))
      };
    }
    const folder = folderOf(query);
    const cached = this._folders.get(folder);
    let files = cached && now - cached.at < SOURCES_TTL_MS ? cached.list : null;
    if (!files) {
      files = await listFolder(folder);
      this._folders.set(folder, { at: Date.now(), list: files });
    }
    // A name is being typed: files further down may match it. The walk runs on its own;
    // this list shows what it has found so far.
    if (query.slice(query.lastIndexOf('/') + 1)) {
      this._crawl.start(() => this._onFilesFound());
    }
    return {
      variables: this._variables.list,
      cells: panel ? notebookCells(panel) : [],
      files,
      deepFiles: this._crawl.files
    };
  }

  private _accept(item: ICompletionItem): void {
    const input = this._input;
    const next = acceptCompletion(
      input.value,
      input.selectionStart ?? 0,
      this._start,
      item
    );
    input.value = next.text;
    input.setSelectionRange(next.caret, next.caret);
    input.focus();
    // A folder or "cell:" goes on listing what is inside; a chip shows what was taken.
    this._onInput();
  }

  // --- mentions into the frame ------------------------------------------------------

  private async _resolve(
    panel: NotebookPanel | null,
    tokens: MentionToken[]
  ): Promise<IMention[]> {
    const order = distinctMentions(tokens).slice(0, MAX_MENTIONS);
    const wantsValues = new Set(
      tokens
        .filter(t => t.kind === 'variable' && t.values)
        .map(t => (t.kind === 'variable' ? t.name : ''))
    );
    const variables = order.filter(
      (t): t is Extract<MentionToken, { kind: 'variable' }> =>
        t.kind === 'variable'
    );
    const described = await describeVariables(
      panel,
      variables.map(v => ({ name: v.name, values: wantsValues.has(v.name) }))
    );
    const byName = new Map(
      described.map(m => [m.kind === 'variable' ? m.name : '', m])
    );
    const cells = panel ? panel.content.widgets : [];
    const out: IMention[] = [];
    for (const token of order) {
      if (token.kind === 'variable') {
        const mention = byName.get(token.name);
        if (mention) {
          out.push(mention);
        }
      } else if (token.kind === 'file') {
        out.push({ kind: 'file', path: token.path });
      } else {
        const cell = cells[token.cell - 1];
        if (cell && !cell.isDisposed) {
          const source = cell.model.sharedModel.getSource();
          out.push({
            kind: 'cell',
            cell: token.cell,
            cell_type: cell.model.type,
            source:
              source.length > MAX_MENTION_SOURCE
                ? source.slice(0, MAX_MENTION_SOURCE - 20) + '\n… [truncated]'
                : source
          });
        }
      }
    }
    return out;
  }

  private _input: HTMLTextAreaElement;
  private _notebooks: INotebookTracker | null;
  private _chips: HTMLElement;
  private _list: Listbox<ICompletionItem>;
  private _removed = new Set<ContextPart>();
  private _variablesOn = true;
  private _watched: Cell | null = null;
  private _pending = 0;
  /** Where the `@` being completed starts in the box. */
  private _start = 0;
  /** The project's files below the root, walked once a name is typed after `@`. */
  private _crawl = new FileCrawl(listFolder);
  private _waitingForFiles = false;
  private _variables: {
    at: number;
    list: { name: string; type: string }[];
  } | null = null;
  private _folders = new Map<
    string,
    { at: number; list: ICompletionSources['files'] }
  >();
  private _disposed = false;
}

export namespace ContextBar {
  export interface IOptions {
    /** The message box the chips describe and the list completes. */
    input: HTMLTextAreaElement;
    notebooks?: INotebookTracker | null;
  }
}

type ICodeModel = import('@jupyterlab/cells').ICodeCellModel;

function mentionTitle(token: MentionToken): string {
  switch (token.kind) {
    case 'variable':
      return token.values
        ? `The kernel variable ${token.name}: its type, shape, columns and values`
        : `The kernel variable ${token.name}: its type, shape and columns (no values)`;
    case 'cell':
      return `Cell ${token.cell} of the active notebook`;
    case 'file':
      return `The project file ${token.path}`;
  }
}

/** A folder of the server's root as completion entries; [] if it cannot be listed. */
async function listFolder(
  folder: string
): Promise<ICompletionSources['files']> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(
    settings.baseUrl,
    'api/contents',
    URLExt.encodeParts(folder)
  );
  try {
    const response = await ServerConnection.makeRequest(
      `${url}?content=1&type=directory`,
      {},
      settings
    );
    if (!response.ok) {
      return [];
    }
    const model = (await response.json()) as {
      content?: { path: string; type: string; name: string }[];
    };
    return (model.content ?? [])
      .filter(item => !item.name.startsWith('.'))
      .slice(0, MAX_LISTED_FILES)
      .map(item => ({
        path: item.path,
        type:
          item.type === 'directory'
            ? 'directory'
            : item.type === 'notebook'
              ? 'notebook'
              : 'file'
      }));
  } catch {
    return [];
  }
}

/** index.ts: the chips follow the user's settings (whether variables go by default). */
export function activateContext(bar: ContextBar, settings: DuckSettings): void {
  bar.follow(settings);
}
