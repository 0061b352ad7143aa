/**
 * The conversation list under the panel's header: switch, rename (inline), export and
 * delete. It only draws and reports what the user asked for; the panel talks to the
 * server.
 */
import {
  deleteIcon,
  editIcon,
  LabIcon,
  markdownIcon,
  notebookIcon
} from '@jupyterlab/ui-components';

import { button, element } from './dom';
import { IConversationSummary } from './protocol';

export interface IConversationListHandlers {
  open(id: string): void;
  rename(id: string, title: string): Promise<void>;
  remove(conversation: IConversationSummary): void;
  exportAs(id: string, format: 'markdown' | 'ipynb'): void;
}

const MAX_TITLE = 200;

function iconButton(
  className: string,
  label: string,
  icon: LabIcon
): HTMLButtonElement {
  return button(
    className,
    label,
    icon.element({ tag: 'span', className: 'jp-RubberDuck-icon' })
  );
}

/** "just now", "5 min ago", "3 h ago", "yesterday", else the date. */
export function whenText(seconds: number, now = Date.now()): string {
  const age = Math.max(0, now / 1000 - seconds);
  if (age < 60) {
    return 'just now';
  }
  if (age < 3600) {
    return `${Math.floor(age / 60)} min ago`;
  }
  if (age < 86400) {
    return `${Math.floor(age / 3600)} h ago`;
  }
  if (age < 2 * 86400) {
    return 'yesterday';
  }
  return new Date(seconds * 1000).toLocaleDateString();
}

export class ConversationList {
  readonly node: HTMLElement;

  constructor(private readonly _handlers: IConversationListHandlers) {
    const node = element('div', 'jp-RubberDuck-conversations');
    node.id = 'jp-RubberDuck-conversations';
    node.setAttribute('role', 'region');
    node.setAttribute('aria-label', 'Conversations');
    node.hidden = true;
    this._list = element('ul', 'jp-RubberDuck-conversation-list');
    this._empty = element(
      'div',
      'jp-RubberDuck-conversations-empty',
      'No saved conversations yet.'
    );
    this._error = element('div', 'jp-RubberDuck-conversations-error');
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    node.append(this._error, this._list, this._empty);
    // One Tab stop for the whole list: arrows move between rows and a row's buttons.
    this._list.addEventListener('keydown', event => this._onKeyDown(event));
    this._list.addEventListener('focusin', event => {
      const target = event.target as HTMLElement;
      if (target.tagName === 'BUTTON') {
        this._rove(target);
      }
    });
    this.node = node;
  }

  get isOpen(): boolean {
    return !this.node.hidden;
  }

  get conversations(): IConversationSummary[] {
    return this._items;
  }

  setOpen(open: boolean): void {
    this.node.hidden = !open;
  }

  showError(message: string | null): void {
    this._error.textContent = message ?? '';
    this._error.hidden = !message;
  }

  /** Draw the list; `current` is marked. An inline rename in progress survives. */
  update(items: IConversationSummary[], current: string): void {
    this._items = items;
    this._current = current;
    if (this._renaming !== null && !items.some(c => c.id === this._renaming)) {
      this._renaming = null;
    }
    const rows = items.map(item => this._row(item));
    this._list.replaceChildren(...rows);
    this._empty.hidden = items.length > 0;
    const stop =
      this._list.querySelector<HTMLElement>(
        '[aria-current="true"] .jp-RubberDuck-conversation-open'
      ) ?? this._openButtons()[0];
    if (stop) {
      this._rove(stop);
    }
  }

  private _openButtons(): HTMLElement[] {
    return [
      ...this._list.querySelectorAll<HTMLElement>(
        '.jp-RubberDuck-conversation-open'
      )
    ];
  }

  /** Make `target` the list's one Tab stop. */
  private _rove(target: HTMLElement): void {
    for (const item of this._list.querySelectorAll<HTMLElement>('button')) {
      item.tabIndex = item === target ? 0 : -1;
    }
  }

  private _onKeyDown(event: KeyboardEvent): void {
    const target = event.target as HTMLElement;
    const row = target.closest<HTMLElement>('.jp-RubberDuck-conversation');
    if (!row || target.tagName !== 'BUTTON') {
      return; // the rename field keeps its own keys
    }
    const opens = this._openButtons();
    const index = opens.findIndex(open => row.contains(open));
    const inRow = [...row.querySelectorAll<HTMLElement>('button')];
    const at = inRow.indexOf(target);
    let next: HTMLElement | undefined;
    switch (event.key) {
      case 'ArrowDown':
        next = opens[Math.min(opens.length - 1, index + 1)];
        break;
      case 'ArrowUp':
        next = opens[Math.max(0, index - 1)];
        break;
      case 'Home':
        next = opens[0];
        break;
      case 'End':
        next = opens[opens.length - 1];
        break;
      case 'ArrowRight':
        next = inRow[Math.min(inRow.length - 1, at + 1)];
        break;
      case 'ArrowLeft':
        next = inRow[Math.max(0, at - 1)];
        break;
      default:
        return;
    }
    event.preventDefault();
    event.stopPropagation();
    if (next) {
      this._rove(next);
      next.focus();
    }
  }

  /** Put the keyboard focus on the current conversation, else the first. */
  focus(): void {
    const rows = [
      ...this._list.querySelectorAll<HTMLElement>(
        '.jp-RubberDuck-conversation-open'
      )
    ];
    const current = this._list.querySelector<HTMLElement>(
      '[aria-current="true"] .jp-RubberDuck-conversation-open'
    );
    (current ?? rows[0])?.focus();
  }

  private _row(item: IConversationSummary): HTMLElement {
    const row = element('li', 'jp-RubberDuck-conversation');
    row.dataset.id = item.id;
    if (item.id === this._current) {
      row.setAttribute('aria-current', 'true');
    }
    if (this._renaming === item.id) {
      row.append(this._renameField(item));
      return row;
    }
    const open = element('button', 'jp-RubberDuck-conversation-open');
    open.type = 'button';
    const when = new Date(item.updated_at * 1000);
    open.title = `Open “${item.title}” (updated ${when.toLocaleString()})`;
    const title = element(
      'span',
      'jp-RubberDuck-conversation-title',
      item.title
    );
    const meta = element('span', 'jp-RubberDuck-conversation-meta');
    const time = element(
      'time',
      'jp-RubberDuck-conversation-time',
      whenText(item.updated_at)
    );
    time.dateTime = when.toISOString();
    meta.append(time);
    if (item.last_question) {
      meta.append(
        ' · ',
        element(
          'span',
          'jp-RubberDuck-conversation-preview',
          item.last_question
        )
      );
    }
    open.append(title, meta);
    open.addEventListener('click', () => this._handlers.open(item.id));

    const actions = element('div', 'jp-RubberDuck-conversation-actions');
    const rename = iconButton(
      'jp-RubberDuck-conversation-rename',
      `Rename “${item.title}”`,
      editIcon
    );
    rename.addEventListener('click', () => {
      this._renaming = item.id;
      this.update(this._items, this._current);
    });
    const markdown = iconButton(
      'jp-RubberDuck-conversation-export-md',
      `Export “${item.title}” as Markdown`,
      markdownIcon
    );
    markdown.addEventListener('click', () =>
      this._handlers.exportAs(item.id, 'markdown')
    );
    const notebook = iconButton(
      'jp-RubberDuck-conversation-export-ipynb',
      `Export “${item.title}” as a notebook`,
      notebookIcon
    );
    notebook.addEventListener('click', () =>
      this._handlers.exportAs(item.id, 'ipynb')
    );
    const remove = iconButton(
      'jp-RubberDuck-conversation-delete',
      `Delete “${item.title}”`,
      deleteIcon
    );
    remove.addEventListener('click', () => this._handlers.remove(item));
    actions.append(rename, markdown, notebook, remove);
    row.append(open, actions);
    return row;
  }

  private _renameField(item: IConversationSummary): HTMLElement {
    const input = element('input', 'jp-RubberDuck-conversation-rename-input');
    input.type = 'text';
    input.value = item.title;
    input.maxLength = MAX_TITLE;
    input.setAttribute(
      'aria-label',
      `New title for “${item.title}” (Enter saves, Escape cancels)`
    );
    let settled = false;
    const finish = (save: boolean): void => {
      if (settled) {
        return;
      }
      settled = true;
      const title = input.value.trim();
      this._renaming = null;
      if (save && title && title !== item.title) {
        // Show the new title at once; the panel reloads the list when the server answers.
        item.title = title;
        void this._handlers.rename(item.id, title);
      }
      this.update(this._items, this._current);
      this._focusRow(item.id);
    };
    input.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        event.preventDefault();
        event.stopPropagation();
        finish(true);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener('blur', () => finish(false));
    requestAnimationFrame(() => {
      input.focus();
      input.select();
    });
    return input;
  }

  private _focusRow(id: string): void {
    const row = [
      ...this._list.querySelectorAll<HTMLElement>('.jp-RubberDuck-conversation')
    ].find(r => r.dataset.id === id);
    row
      ?.querySelector<HTMLElement>('.jp-RubberDuck-conversation-rename')
      ?.focus();
  }

  private _list: HTMLElement;
  private _empty: HTMLElement;
  private _error: HTMLElement;
  private _items: IConversationSummary[] = [];
  private _current = '';
  private _renaming: string | null = null;
}
