/**
 * The conversations control under the header: a button naming the current conversation
 * that opens the list (conversations.ts), and what the list's buttons do on the server
 * (rename, delete after confirming, export as a download). Switching is the panel's: the
 * bar reports which conversation was picked.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { caretDownIcon } from '@jupyterlab/ui-components';

import { ApiError, describeError, DuckApi, ExportFormat } from './api';
import { ConversationList } from './conversations';
import { element } from './dom';
import { IConversationSummary } from './protocol';

export interface IConversationBarHandlers {
  /** The conversation the chat is in now. */
  current(): string;
  /** The user picked a conversation in the list. */
  open(id: string): void;
  /** The current conversation was deleted: the chat starts a new one. */
  currentDeleted(): void;
}

// The browser has the file once the link's click is handled; the blob is freed after.
const REVOKE_DOWNLOAD_MS = 30_000;

export class ConversationBar {
  /** The toggle button, then the list it opens. */
  readonly nodes: readonly HTMLElement[];

  constructor(
    private readonly _api: DuckApi,
    private readonly _handlers: IConversationBarHandlers
  ) {
    this._list = new ConversationList({
      open: id => _handlers.open(id),
      rename: (id, name) => this._rename(id, name),
      remove: conversation => void this._delete(conversation),
      exportAs: (id, format) => void this._export(id, format)
    });
    const toggle = element('button', 'jp-RubberDuck-conversations-toggle');
    toggle.type = 'button';
    toggle.setAttribute('aria-expanded', 'false');
    toggle.setAttribute('aria-controls', this._list.node.id);
    toggle.title = 'Your conversations: switch, rename, export, delete';
    this._title = element(
      'span',
      'jp-RubberDuck-conversations-current',
      'New conversation'
    );
    toggle.append(
      this._title,
      caretDownIcon.element({ tag: 'span', className: 'jp-RubberDuck-caret' })
    );
    toggle.addEventListener('click', () => this.toggle());
    this._toggle = toggle;
    this.nodes = [toggle, this._list.node];
  }

  get isOpen(): boolean {
    return this._list.isOpen;
  }

  /** The conversations as last listed (empty until the first listing answered). */
  get conversations(): IConversationSummary[] {
    return this._list.conversations;
  }

  /** Open or close the list; opening lists afresh and puts the focus on the current row. */
  toggle(open = !this._list.isOpen): void {
    this._list.setOpen(open);
    this._toggle.setAttribute('aria-expanded', String(open));
    if (open) {
      void this.refresh().then(() => this._list.focus());
    }
  }

  /** Close the list and give the focus back to its button (Escape). */
  closeToToggle(): void {
    this.toggle(false);
    this._toggle.focus();
  }

  /** Ask the server for the list again. */
  async refresh(): Promise<void> {
    try {
      const items = await this._api.listConversations();
      this._list.update(items, this._handlers.current());
      this._list.showError(null);
    } catch (error) {
      this._list.showError(
        `Could not load the conversations: ${describeError(error)}`
      );
    }
    this._titleFromList();
  }

  /** The chat moved to another conversation: mark it in the list and name it. */
  showCurrent(): void {
    this._list.update(this._list.conversations, this._handlers.current());
    this._titleFromList();
  }

  /** Name the current conversation on the button (a loaded one may be newer than the list). */
  showTitle(title: string): void {
    this._title.textContent = title;
    this._toggle.setAttribute(
      'aria-label',
      `Conversations (current: ${title})`
    );
  }

  private _titleFromList(): void {
    const current = this._handlers.current();
    const listed = this._list.conversations.find(c => c.id === current);
    this.showTitle(listed?.title ?? 'New conversation');
  }

  private async _rename(id: string, title: string): Promise<void> {
    let failure: string | null = null;
    try {
      await this._api.renameConversation(id, title);
    } catch (error) {
      failure = `Could not rename: ${describeError(error)}`;
    }
    // Refresh first: a refresh that succeeds clears the list's error, and this one (the
    // conversation was deleted elsewhere, the session expired) must stay readable.
    await this.refresh();
    if (failure) {
      this._list.showError(failure);
    }
  }

  private async _delete(conversation: IConversationSummary): Promise<void> {
    const result = await showDialog({
      title: 'Delete this conversation?',
      body: `“${conversation.title}” and all its messages and suggestions will be deleted. This cannot be undone.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await this._api.deleteConversation(conversation.id);
      this._list.showError(null);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        this._list.showError(`Could not delete: ${describeError(error)}`);
        return;
      }
    }
    if (conversation.id === this._handlers.current()) {
      this._handlers.currentDeleted();
    }
    await this.refresh();
    this._list.focus();
  }

  private async _export(id: string, format: ExportFormat): Promise<void> {
    try {
      const download = await this._api.exportConversation(id, format);
      const url = URL.createObjectURL(download.blob);
      const link = element('a', 'jp-RubberDuck-download');
      link.href = url;
      link.download = download.filename;
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), REVOKE_DOWNLOAD_MS);
      this._list.showError(null);
    } catch (error) {
      this._list.showError(`Could not export: ${describeError(error)}`);
    }
  }

  private _list: ConversationList;
  private _toggle: HTMLButtonElement;
  private _title: HTMLSpanElement;
}
