import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { Cell } from '@jupyterlab/cells';
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror'; // hook(answers)
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { caretDownIcon } from '@jupyterlab/ui-components';
import type { CommandRegistry } from '@lumino/commands';
import { UUID } from '@lumino/coreutils';
import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { AnswerView, IAnswerServices } from './answer';
import {
  ChatModel,
  IChunk,
  IConversationChange,
  LoadFailure,
  ShownMessage,
  statusLine
} from './chatmodel';
import { ApiError, describeError, DuckApi, ExportFormat } from './api';
import { openCitation } from './citations';
import { ContextBar } from './chips'; // hook(context)
import { ConnectionState, DuckConnection } from './connection';
import {
  cellContext,
  cellError,
  contextLabel,
  currentNotebook
} from './context';
import { ConversationList } from './conversations';
import { button, element } from './dom';
import { kernelVariables } from './kernelvars';
import {
  ErrorCode,
  IChatContext,
  IChatFrame,
  IChunkFrame,
  IConversationDetail,
  IConversationSummary,
  IDoneFrame,
  IEngineInfo,
  IErrorFrame,
  IHelloFrame,
  ICitation,
  IStoredMessage,
  ISuggestion,
  PROTOCOL_VERSION,
  ServerFrame
} from './protocol';
import { DuckSettings, IDuckSettingsValues } from './settings';
import { slashCommands, SlashCompleter } from './slash';
import { SuggestionActions } from './suggestion';
import { TaskView } from './task';
import {
  addAnswer,
  attemptsText,
  emptyTotals,
  failoverText,
  formatCost,
  formatTokens,
  spendText
} from './usage';

/** Client-side notice codes, next to the server's ErrorCode values. */
const DISCONNECTED = 'disconnected';
const BUSY_HERE = 'busy_here';

// How long a command from outside the panel (Fix this error) waits for the socket.
const CONNECT_WAIT_MS = 10_000;

// If the server never confirms a cancel, give the user the input back anyway.
const STOP_FALLBACK_MS = 5_000;

// Rejections the user can fix by editing or resending, so their text comes back.
const RETRYABLE_CODES = new Set<string>([
  ErrorCode.FRAME_TOO_LARGE,
  ErrorCode.BUSY,
  ErrorCode.MODEL_NOT_ALLOWED,
  // hook(resume): an answer the server could not continue after a drop; resend it.
  ErrorCode.RESUME_UNAVAILABLE
]);

// The command another plugin registers to build the project's index (the empty state
// offers it only once it exists).
const INDEX_COMMAND = 'rubberduck:index-project';

/** The answer currently streaming. */
interface ITurn {
  id: string;
  question: string;
  answer: AnswerView;
  /** Pending animation frame for a re-render, 0 if none. */
  frame: number;
  stopping: boolean;
  /** "Thinking…" until the first token, step or end arrives. */
  thinking: HTMLElement | null;
}

/** What `_send` sends beyond the text: the cell it is about, how the bubble reads. */
interface ISendOptions {
  notebook?: NotebookPanel;
  context?: IChatContext;
  /** Force an engine (the hello frame's names). */
  engine?: string;
}

export namespace ChatPanel {
  export interface IOptions {
    connection: DuckConnection;
    api: DuckApi;
    /** Optional: without it questions go out with no notebook context. */
    notebooks?: INotebookTracker | null;
    /** For opening cited files; without it sources are listed but not opened. */
    commands?: CommandRegistry | null;
    /** The user's settings (font size, default model), followed live. */
    settings?: DuckSettings | null;
    // hook(answers): JupyterLab's highlighter, for syntax colours in code blocks.
    languages?: IEditorLanguageRegistry | null;
  }
}

/**
 * The RubberDuck sidebar: the conversation list, a task panel, the conversation log,
 * an input box with slash-command completion, and a status line.
 */
export class ChatPanel extends Widget {
  constructor(options: ChatPanel.IOptions) {
    super();
    this.addClass('jp-RubberDuck');
    this._connection = options.connection;
    this._api = options.api;
    this._notebooks = options.notebooks ?? null;
    this._commands = options.commands ?? null;
    this._storageKey = `rubberduck:conversation:${this._api.baseUrl}`;
    this._notebookKey = `rubberduck:notebook-conversations:${this._api.baseUrl}`;
    this._settings = options.settings ?? null;
    this._model = new ChatModel(
      this._loadConversationId() ?? UUID.uuid4(),
      this._api
    );
    this._model.queueChanged.connect(this._renderQueue, this);
    this._model.conversationChanged.connect(this._onConversationChanged, this);
    this._model.loaded.connect(this._renderConversation, this);
    this._model.loadFailed.connect(this._onLoadFailed, this);
    this._model.loadingChanged.connect((_, loading) =>
      this._log.setAttribute('aria-busy', String(loading))
    );
    const suggestions = new SuggestionActions(this._api, this._notebooks);
    this._services = {
      engineTitle: name => this._engineTitle(name),
      openCitation: citation => this._openCitation(citation),
      suggestions,
      // hook(answers): code blocks' Insert/Replace/diff act on the active notebook.
      codeBlocks: {
        notebooks: this._notebooks,
        languages: options.languages ?? null
      }
    };

    const header = element('div', 'jp-RubberDuck-header');
    const title = element('span', 'jp-RubberDuck-title', 'RubberDuck');
    this._newButton = element(
      'button',
      'jp-RubberDuck-new',
      'New conversation'
    );
    this._newButton.type = 'button';
    this._newButton.title = 'Clear the view and start a new conversation';
    this._modelSelect = element('select', 'jp-RubberDuck-model');
    this._modelSelect.setAttribute('aria-label', 'Model');
    this._modelSelect.title = 'Model for the next question';
    this._modelSelect.hidden = true;
    // Grouped so a narrow sidebar wraps both under the title rather than squeezing one.
    const actions = element('div', 'jp-RubberDuck-actions');
    actions.append(this._modelSelect, this._newButton);
    header.append(title, actions);

    this._list = new ConversationList({
      open: id => void this._switchTo(id),
      rename: (id, name) => this._rename(id, name),
      remove: conversation => void this._delete(conversation),
      exportAs: (id, format) => void this._export(id, format)
    });
    this._listButton = element('button', 'jp-RubberDuck-conversations-toggle');
    this._listButton.type = 'button';
    this._listButton.setAttribute('aria-expanded', 'false');
    this._listButton.setAttribute('aria-controls', this._list.node.id);
    this._listButton.title =
      'Your conversations: switch, rename, export, delete';
    this._listTitle = element(
      'span',
      'jp-RubberDuck-conversations-current',
      'New conversation'
    );
    this._listButton.append(
      this._listTitle,
      caretDownIcon.element({ tag: 'span', className: 'jp-RubberDuck-caret' })
    );

    this._task = new TaskView();

    this._log = element('div', 'jp-RubberDuck-messages');
    this._log.setAttribute('role', 'log');
    this._log.setAttribute('aria-live', 'polite');
    this._log.setAttribute('aria-label', 'RubberDuck conversation');
    this._empty = this._emptyState();
    // Whatever adds to or clears the log, the starting points show only when it is empty.
    new MutationObserver(() => this._updateEmpty()).observe(this._log, {
      childList: true
    });
    this._queueNode = element('ul', 'jp-RubberDuck-queue');
    this._queueNode.setAttribute('aria-label', 'Queued messages');
    this._queueNode.hidden = true;

    const footer = element('div', 'jp-RubberDuck-footer');
    this._contextLine = element('div', 'jp-RubberDuck-context');
    const compose = element('div', 'jp-RubberDuck-compose');
    this._input = element('textarea', 'jp-RubberDuck-input');
    this._input.rows = 3;
    this._input.setAttribute('aria-label', 'Message RubberDuck');
    this._input.placeholder = 'Ask about your code… (/ for commands)';
    this._input.title =
      'Enter sends, Shift+Enter adds a line, / at the start lists the commands';
    this._slash = new SlashCompleter(this._input);
    // hook(context): chips of what goes with the message, and the @ list (chips.ts)
    this.contextBar = new ContextBar({
      input: this._input,
      notebooks: this._notebooks
    });
    this._sendButton = element('button', 'jp-RubberDuck-send');
    this._sendButton.type = 'button';
    compose.append(this._input, this._sendButton);
    const statusBar = element('div', 'jp-RubberDuck-statusbar');
    this._status = element('div', 'jp-RubberDuck-status');
    this._status.setAttribute('role', 'status');
    this._spend = element('div', 'jp-RubberDuck-spend');
    statusBar.append(this._status, this._spend);
    footer.append(
      this.contextBar.node, // hook(context)
      this._queueNode,
      this._slash.node,
      compose,
      statusBar
    );

    this.node.append(
      header,
      this._listButton,
      this._list.node,
      this._task.node,
      this._log,
      this._empty,
      footer
    );
    this._updateEmpty();
    this._updateSendButton();
    this._updateStatus();
    this._updateSpend();
    this._updateContextLine();

    this._connection.stateChanged.connect(this._onStateChanged, this);
    this._connection.frameReceived.connect(this._onFrame, this);
    this._notebooks?.currentChanged.connect(this._updateContextLine, this);
    this._notebooks?.activeCellChanged.connect(this._updateContextLine, this);
    this._commands?.commandChanged.connect(this._updateEmpty, this);
    if (this._settings) {
      this._settings.changed.connect(this._applySettings, this);
      this._applySettings(this._settings, this._settings.values);
    }
  }

  /** The conversation new messages go to. */
  get conversationId(): string {
    return this._model.conversationId;
  }

  /** Put the caret in the message box. */
  focusInput(): void {
    this._input.focus();
  }

  /** Open the conversation list with the keyboard focus on the current row. */
  openConversations(): void {
    this._toggleList(true);
  }

  /**
   * Ask RubberDuck to fix a cell's error: sends `/fix` with the cell, its traceback and
   * the kernel's variables. False when nothing could be sent.
   */
  async fixCellError(notebook: NotebookPanel, cell: Cell): Promise<boolean> {
    // Taken now: the user may click elsewhere while the socket connects.
    const context = cellContext(notebook, cell);
    // The sidebar may have just been opened for this: let it draw the conversation so
    // far, and give its socket time to say hello.
    await this._restored;
    await this._whenOpen(CONNECT_WAIT_MS);
    // The fix belongs to that notebook's conversation, not whichever one is open.
    const home = this._notebookConversation(notebook.context.path);
    if (home !== this._model.conversationId) {
      if (this._turn) {
        this._addNotice(
          BUSY_HERE,
          'An answer is still coming in; try again once it has finished.'
        );
        return false;
      }
      if (home) {
        await this._switchTo(home);
      } else {
        this._newConversation();
      }
    }
    // Said as the user would say it; the engine is forced, so no "/fix" is needed.
    const engine = this._engines.find(e => e.commands.includes('/fix'));
    const text = fixRequestText(context);
    return engine
      ? this._send(text, { notebook, context, engine: engine.name })
      : this._send('/fix', { notebook, context });
  }

  handleEvent(event: Event): void {
    switch (event.type) {
      case 'keydown':
        this._onKeyDown(event as KeyboardEvent);
        break;
      case 'click':
        if (event.target === this._sendButton) {
          this._onSendButton();
        } else if (event.target === this._newButton) {
          this._newConversation();
        } else if (this._listButton.contains(event.target as Node)) {
          this._toggleList();
        }
        break;
      case 'change':
        if (event.target === this._modelSelect) {
          this._pickedModel = this._modelSelect.value;
          this._updateStatus();
        }
        break;
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    if (this._turn) {
      cancelAnimationFrame(this._turn.frame);
    }
    Signal.disconnectReceiver(this);
    this.contextBar.dispose(); // hook(context)
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.node.addEventListener('keydown', this);
    this.node.addEventListener('click', this);
    this.node.addEventListener('change', this);
  }

  protected onBeforeDetach(msg: Message): void {
    this.node.removeEventListener('keydown', this);
    this.node.removeEventListener('click', this);
    this.node.removeEventListener('change', this);
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Connect lazily: a sidebar nobody opens should not hold a socket.
    this._connection.start();
    this._updateContextLine();
    if (!this._restored) {
      this._restored = this._model.restore().then(() => undefined);
      void this._refreshList();
    }
  }

  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    this.focusInput();
  }

  // --- user actions -----------------------------------------------------------------

  private _onKeyDown(event: KeyboardEvent): void {
    if (event.target === this._input && this._slash.handleKey(event)) {
      return;
    }
    if (event.target === this._input && this.contextBar.handleKey(event)) {
      return; // hook(context)
    }
    if (event.key === 'Escape' && this._list.isOpen) {
      event.preventDefault();
      event.stopPropagation();
      this._toggleList(false);
      this._listButton.focus();
      return;
    }
    if (event.key === 'Escape' && this._turn) {
      event.preventDefault();
      event.stopPropagation();
      this._stop();
      return;
    }
    if (
      event.target === this._input &&
      event.key === 'Enter' &&
      !event.shiftKey &&
      !event.isComposing
    ) {
      event.preventDefault();
      event.stopPropagation();
      if (this._turn) {
        // While an answer streams, the message waits its turn (shown, removable).
        this._enqueue();
      } else {
        void this._send();
      }
    }
  }

  private _onSendButton(): void {
    if (this._turn) {
      this._stop();
    } else {
      void this._send();
    }
  }

  /**
   * Send `text` (default: the message box). The kernel's variables are asked for first,
   * which takes at most VARIABLES_TIMEOUT_MS.
   */
  private async _send(text?: string, about?: ISendOptions): Promise<boolean> {
    const fromBox = text === undefined;
    const message = fromBox ? this._input.value : text;
    if (!message.trim() || this._sending) {
      return false;
    }
    if (this._turn) {
      if (!fromBox) {
        this._addNotice(
          BUSY_HERE,
          'An answer is still coming in; try again once it has finished.'
        );
      }
      return false;
    }
    if (this._connection.state !== 'open') {
      this._notSent(fromBox);
      return false;
    }
    this._sending = true;
    this._updateSendButton();
    try {
      const id = UUID.uuid4();
      const frame: IChatFrame = {
        type: 'chat',
        v: PROTOCOL_VERSION,
        id,
        conversation_id: this._model.conversationId,
        text: message
      };
      // hook(context): the chips decide what goes; /fix sends its cell and variables
      const context = about?.context ?? (await this.contextBar.gather(message));
      const notebook = about?.notebook;
      if (notebook) {
        const variables = await kernelVariables(notebook);
        if (variables?.length) {
          context.variables = variables;
        }
      }
      if (Object.keys(context).length) {
        frame.context = context;
      }
      const model = this._chosenModel();
      if (model !== null) {
        frame.model = model;
      }
      if (about?.engine) {
        frame.engine = about.engine;
      }
      if (this._turn || !this._connection.send(frame)) {
        this._notSent(fromBox);
        return false;
      }
      this._addUserMessage(message);
      this.contextBar.sent(); // hook(context)
      if (fromBox && this._input.value === message) {
        this._input.value = '';
      }
      this._saveConversationId();
      // The notebook the user is in: "Fix this error" there comes back here.
      const home = notebook ?? currentNotebook(this._notebooks);
      if (home) {
        this._rememberNotebook(home.context.path);
      }
      this._startTurn(id, message);
      return true;
    } finally {
      this._sending = false;
      this._updateSendButton();
    }
  }

  private _whenOpen(timeoutMs: number): Promise<void> {
    this._connection.start();
    if (this._connection.state === 'open') {
      return Promise.resolve();
    }
    return new Promise(resolve => {
      const done = (): void => {
        window.clearTimeout(timer);
        this._connection.stateChanged.disconnect(onState);
        resolve();
      };
      const onState = (_: DuckConnection, state: ConnectionState): void => {
        if (state === 'open') {
          done();
        }
      };
      const timer = window.setTimeout(done, timeoutMs);
      this._connection.stateChanged.connect(onState);
    });
  }

  private _notSent(fromBox: boolean): void {
    // Keep the text in the box so nothing typed is lost.
    this._addNotice(
      DISCONNECTED,
      'Not connected to the RubberDuck server, so this message was not sent. ' +
        (fromBox
          ? 'It is still in the box: send it again once the status line shows the model.'
          : 'Try again once the status line shows the model.')
    );
    this._connection.reconnectNow();
  }

  private _stop(): void {
    const turn = this._turn;
    if (!turn || turn.stopping) {
      return;
    }
    turn.stopping = true;
    this._updateSendButton();
    const sent = this._connection.send({
      type: 'cancel',
      v: PROTOCOL_VERSION,
      id: turn.id
    });
    if (!sent) {
      this._finishAsStopped(turn);
      return;
    }
    window.setTimeout(() => {
      if (this._turn === turn) {
        this._finishAsStopped(turn);
      }
    }, STOP_FALLBACK_MS);
  }

  /**
   * The chat moved to another conversation: cancel the answer left streaming (the server
   * keeps what it saved) and clear the view for the one now current.
   */
  private _onConversationChanged(
    _: ChatModel,
    change: IConversationChange
  ): void {
    const turn = this._turn;
    if (turn) {
      this._connection.send({
        type: 'cancel',
        v: PROTOCOL_VERSION,
        id: turn.id
      });
      this._endTurn(turn);
    }
    this._log.replaceChildren();
    this._answers = [];
    this._task.show(null);
    this._totals = emptyTotals();
    this._updateSpend();
    this._saveConversationId();
    this._updateListTitle();
    this._list.update(this._list.conversations, change.id);
  }

  private _newConversation(): void {
    this._model.newConversation(UUID.uuid4());
    this.focusInput();
  }

  private _toggleList(open = !this._list.isOpen): void {
    this._list.setOpen(open);
    this._listButton.setAttribute('aria-expanded', String(open));
    if (open) {
      void this._refreshList().then(() => this._list.focus());
    }
  }

  private async _switchTo(id: string): Promise<void> {
    this._toggleList(false);
    // The view changes once the conversation has loaded (ChatModel.switchTo).
    await this._model.switchTo(id);
    this.focusInput();
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
    await this._refreshList();
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
    if (conversation.id === this._model.conversationId) {
      this._newConversation();
    }
    await this._refreshList();
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
      // The browser has the file once the click is handled; free the blob soon after.
      window.setTimeout(() => URL.revokeObjectURL(url), 30_000);
      this._list.showError(null);
    } catch (error) {
      this._list.showError(`Could not export: ${describeError(error)}`);
    }
  }

  private async _openCitation(citation: ICitation): Promise<void> {
    if (!this._commands) {
      return;
    }
    try {
      await openCitation(this._commands, citation);
    } catch (error) {
      this._addNotice(
        'open_failed',
        `Could not open ${citation.path}: ${(error as Error).message}`
      );
    }
  }

  // --- conversations ----------------------------------------------------------------

  private async _refreshList(): Promise<void> {
    try {
      const items = await this._api.listConversations();
      this._list.update(items, this._model.conversationId);
      this._list.showError(null);
    } catch (error) {
      this._list.showError(
        `Could not load the conversations: ${describeError(error)}`
      );
    }
    this._updateListTitle();
  }

  /** A switch the user asked for did not load: say why; the conversation shown stays. */
  private _onLoadFailed(_: ChatModel, failure: LoadFailure): void {
    if (failure.reason === 'missing') {
      this._addNotice(
        ErrorCode.NOT_FOUND,
        'This conversation no longer exists.'
      );
      return;
    }
    const error = failure.error;
    this._addNotice(
      error instanceof ApiError ? error.code : 'load_failed',
      `Could not load the conversation: ${describeError(error)}`,
      error instanceof ApiError ? error.retryAfter : undefined
    );
  }

  /** Draw the conversation the model loaded, in the order it holds the messages. */
  private _renderConversation(_: ChatModel, detail: IConversationDetail): void {
    this._log.replaceChildren();
    this._answers = [];
    this._totals = emptyTotals();
    const suggestions = new Map(detail.suggestions.map(s => [s.id, s]));
    for (const item of this._model.messages) {
      switch (item.kind) {
        case 'question':
          this._addUserMessage(item.message.content);
          if (item.waiting) {
            this._addMessage('notice').append(
              element(
                'div',
                'jp-RubberDuck-finish',
                '(still being answered: reopen the conversation to see the answer)'
              )
            );
          }
          break;
        case 'refusal':
          this._addNotice(item.code, item.text);
          break;
        case 'answer':
          this._addStoredAnswer(item, suggestions);
          break;
      }
    }
    this._task.show(detail.conversation.task);
    this._listTitle.textContent = detail.conversation.title;
    this._updateSpend();
    this._scrollToEnd();
  }

  private _addStoredAnswer(
    item: Extract<ShownMessage, { kind: 'answer' }>,
    suggestions: Map<string, ISuggestion>
  ): void {
    const message = item.message;
    const meta = message.meta;
    const answer = this._newAnswer();
    if (meta.route) {
      answer.setRoute(meta.route.engine, meta.route.reason, meta.route.forced);
    }
    meta.notices.forEach(notice => answer.addNotice(notice));
    for (const step of meta.steps) {
      answer.startStep(step.step, step.title);
      answer.addStepText(step.step, step.text);
      answer.finishStep(step.step);
    }
    if (item.showText) {
      answer.addText(message.content);
    }
    meta.corrections.forEach(c => answer.addCorrection(c));
    answer.setCitations(meta.citations);
    for (const id of meta.suggestions) {
      const suggestion = suggestions.get(id);
      if (suggestion) {
        answer.addSuggestion(suggestion);
      }
    }
    answer.render();
    if (item.ending === 'stopped') {
      answer.appendLine(element('div', 'jp-RubberDuck-stopped', '(stopped)'));
    } else if (item.ending === 'failed' && meta.error) {
      const error = element('div', 'jp-RubberDuck-error', meta.error.message);
      error.dataset.code = meta.error.code;
      answer.appendLine(error);
    } else if (item.ending === 'cut-off') {
      answer.appendLine(
        element('div', 'jp-RubberDuck-finish', '(the answer was cut off)')
      );
    }
    const done = storedDone(message);
    const usage = usageLine(done);
    if (usage) {
      answer.appendLine(usage);
    }
    addAnswer(this._totals, done);
  }

  private _updateListTitle(): void {
    const current = this._list.conversations.find(
      c => c.id === this._model.conversationId
    );
    this._listTitle.textContent = current?.title ?? 'New conversation';
    this._listButton.setAttribute(
      'aria-label',
      `Conversations (current: ${this._listTitle.textContent})`
    );
  }

  private _loadConversationId(): string | null {
    try {
      return window.localStorage.getItem(this._storageKey);
    } catch {
      return null; // storage disabled: every reload starts a new conversation
    }
  }

  private _saveConversationId(): void {
    try {
      window.localStorage.setItem(this._storageKey, this._model.conversationId);
    } catch {
      // storage disabled or full: nothing to keep across reloads
    }
  }

  // --- server frames ----------------------------------------------------------------

  private _onStateChanged(_: DuckConnection, state: ConnectionState): void {
    this._updateStatus();
    const turn = this._turn;
    if (state === 'closed' && turn) {
      this._flush(turn);
      this._endTurn(turn);
      this._addNotice(
        DISCONNECTED,
        'The connection to the RubberDuck server dropped before the answer finished.'
      );
    }
  }

  private _onFrame(_: DuckConnection, frame: ServerFrame): void {
    if (frame.type === 'hello') {
      this._onHello(frame);
      return;
    }
    if (frame.type === 'error') {
      this._onError(frame);
      return;
    }
    const turn = this._turn;
    if (!turn || frame.id !== turn.id) {
      return;
    }
    const answer = turn.answer;
    // Route, task and notices come before the model says anything: still thinking.
    if (
      frame.type === 'chunk' ||
      frame.type === 'step' ||
      frame.type === 'suggestion'
    ) {
      this._stopThinking(turn);
    }
    switch (frame.type) {
      case 'route':
        answer.setRoute(frame.engine, frame.reason, frame.forced);
        break;
      case 'step':
        // Text that arrived ahead of this frame belongs before it.
        this._flush(turn);
        if (frame.status === 'started') {
          answer.startStep(frame.step, frame.title);
        } else {
          answer.finishStep(frame.step);
        }
        break;
      case 'chunk':
        this._onChunk(turn, frame);
        break;
      case 'citations':
        answer.setCitations(frame.citations);
        this._scheduleRender(turn);
        break;
      case 'correction':
        answer.addCorrection(frame);
        break;
      case 'suggestion':
        answer.addSuggestion(frame.suggestion);
        this._scrollToEndIfFollowing();
        break;
      case 'task':
        this._task.show(frame.task);
        break;
      case 'notice':
        answer.addNotice(frame);
        break;
      case 'done':
        this._onDone(turn, frame);
        break;
    }
  }

  private _onHello(frame: IHelloFrame): void {
    if (frame.protocol_version !== PROTOCOL_VERSION) {
      this._addNotice(
        'unsupported_version',
        `This page speaks RubberDuck protocol version ${PROTOCOL_VERSION} but the ` +
          `server speaks version ${frame.protocol_version}. Reload the page.`
      );
    }
    this._engines = frame.engines;
    this._slash.setCommands(slashCommands(frame.engines));
    this._answers.forEach(answer => answer.refreshEngineTitle());
    this._updateModelPicker(frame.models, frame.model.name);
    // The connection reported 'open' before this frame reached the picker.
    this._updateStatus();
  }

  private _onChunk(turn: ITurn, frame: IChunkFrame): void {
    // The model puts chunks back in order; this only draws what it hands back.
    const ready = this._model.acceptChunk(turn.id, frame.seq, {
      text: frame.text,
      step: frame.step
    });
    ready.forEach(chunk => this._addChunk(turn, chunk));
    if (ready.length) {
      this._scheduleRender(turn);
    }
  }

  private _addChunk(turn: ITurn, chunk: IChunk): void {
    if (chunk.step !== undefined) {
      turn.answer.addStepText(chunk.step, chunk.text);
    } else {
      turn.answer.addText(chunk.text);
    }
  }

  private _scheduleRender(turn: ITurn): void {
    if (!turn.frame) {
      // Re-parsing the whole answer per chunk is cheap once per frame, not per chunk.
      turn.frame = requestAnimationFrame(() => {
        turn.frame = 0;
        this._render(turn);
      });
    }
  }

  private _onDone(turn: ITurn, frame: IDoneFrame): void {
    this._flush(turn);
    this._endTurn(turn);
    const answer = turn.answer;
    if (frame.finish_reason === 'cancelled') {
      answer.appendLine(element('div', 'jp-RubberDuck-stopped', '(stopped)'));
    } else if (frame.finish_reason !== 'stop') {
      answer.appendLine(
        element(
          'div',
          'jp-RubberDuck-finish',
          `(the answer ended early: ${frame.finish_reason})`
        )
      );
    }
    const usage = usageLine(frame);
    if (usage) {
      answer.appendLine(usage);
    }
    addAnswer(this._totals, frame);
    this._updateSpend();
    this._scrollToEndIfFollowing();
    // The first answer names the conversation; keep the list and its title current.
    void this._refreshList();
    this._sendQueued();
  }

  private _onError(frame: IErrorFrame): void {
    const turn = this._turn;
    if (frame.id !== null && frame.id !== turn?.id) {
      // Typically unknown_id for a cancel that crossed its answer's done frame.
      console.debug('RubberDuck: error for an inactive answer', frame);
      return;
    }
    if (turn) {
      this._flush(turn);
      this._endTurn(turn);
      if (!turn.answer.hasContent) {
        // Nothing was answered: show the notice alone, not an empty model answer.
        turn.answer.node.remove();
        this._answers = this._answers.filter(a => a !== turn.answer);
      }
      if (RETRYABLE_CODES.has(frame.code) && !this._input.value) {
        this._input.value = turn.question;
      }
      // hook(resume): what streamed before the drop stays, marked as incomplete.
      if (
        frame.code === ErrorCode.RESUME_UNAVAILABLE &&
        turn.answer.hasContent
      ) {
        turn.answer.appendLine(
          element(
            'div',
            'jp-RubberDuck-finish',
            '(incomplete: the connection dropped)'
          )
        );
      }
      void this._refreshList();
    }
    this._addNotice(frame.code, frame.message, frame.retry_after);
    if (turn) {
      this._sendQueued();
    }
  }

  // --- turns ------------------------------------------------------------------------

  private _startTurn(id: string, question: string): void {
    const answer = this._newAnswer();
    answer.setStreaming(true);
    this._turn = {
      id,
      question,
      answer,
      frame: 0,
      stopping: false,
      thinking: null
    };
    this._model.startTurn(id, question);
    const thinking = element('div', 'jp-RubberDuck-thinking', 'Thinking…');
    thinking.setAttribute('role', 'status');
    thinking.setAttribute('aria-live', 'polite');
    this._log.append(thinking);
    this._turn.thinking = thinking;
    this._scrollToEnd();
    this._updateSendButton();
  }

  private _newAnswer(): AnswerView {
    const answer = new AnswerView(this._services);
    this._answers.push(answer);
    this._log.append(answer.node);
    return answer;
  }

  /** Render everything received, including chunks stranded behind a gap. */
  private _flush(turn: ITurn): void {
    if (this._model.turn?.id === turn.id) {
      this._model.flush().forEach(chunk => this._addChunk(turn, chunk));
    }
    cancelAnimationFrame(turn.frame);
    turn.frame = 0;
    this._render(turn);
  }

  private _render(turn: ITurn): void {
    const follow = this._isAtEnd();
    turn.answer.render();
    if (follow) {
      this._scrollToEnd();
    }
  }

  private _stopThinking(turn: ITurn): void {
    turn.thinking?.remove();
    turn.thinking = null;
  }

  private _endTurn(turn: ITurn): void {
    this._stopThinking(turn);
    cancelAnimationFrame(turn.frame);
    turn.frame = 0;
    turn.answer.setStreaming(false);
    if (this._turn === turn) {
      this._turn = null;
    }
    if (this._model.turn?.id === turn.id) {
      this._model.endTurn();
    }
    this._updateSendButton();
  }

  private _finishAsStopped(turn: ITurn): void {
    this._flush(turn);
    this._endTurn(turn);
    turn.answer.appendLine(
      element('div', 'jp-RubberDuck-stopped', '(stopped)')
    );
    this._sendQueued();
  }

  // --- queue ------------------------------------------------------------------------

  /** Queue the box's text to go out when the current answer ends. */
  private _enqueue(): void {
    if (this._model.enqueue(this._input.value)) {
      this._input.value = '';
      this._slash.close();
    }
  }

  /** The queue as the model holds it: each message with its remove button. */
  private _renderQueue(_: ChatModel, queue: readonly string[]): void {
    const items = queue.map((text, index) => {
      const node = element('li', 'jp-RubberDuck-queued');
      const remove = button(
        'jp-RubberDuck-queued-remove',
        `Remove the queued message “${text.slice(0, 40)}”`,
        '×'
      );
      remove.addEventListener('click', () => {
        this._model.removeQueued(index);
        this.focusInput();
      });
      node.append(
        element('span', 'jp-RubberDuck-queued-label', 'Queued'),
        element('span', 'jp-RubberDuck-queued-text', text),
        remove
      );
      return node;
    });
    this._queueNode.replaceChildren(...items);
    this._queueNode.hidden = !items.length;
  }

  /** Send the oldest queued message, once the answer before it has ended. */
  private _sendQueued(): void {
    const next = this._model.takeQueued();
    if (next === null) {
      return;
    }
    void this._send(next).then(sent => {
      if (!sent && !this._input.value) {
        // Not sent (disconnected): give the text back rather than lose it.
        this._input.value = next;
      }
    });
  }

  // --- settings, empty state, notebooks' conversations -------------------------------

  private _applySettings(
    _: DuckSettings,
    values: Readonly<IDuckSettingsValues>
  ): void {
    const size = values.chatFontSize ? `${values.chatFontSize}px` : '';
    this._log.style.fontSize = size;
    this._input.style.fontSize = size;
    this._empty.style.fontSize = size;
    if (this._models.length) {
      this._updateModelPicker(this._models, this._serverModel);
      this._updateStatus();
    }
  }

  private _emptyState(): HTMLElement {
    const node = element('div', 'jp-RubberDuck-empty');
    node.append(
      element(
        'p',
        'jp-RubberDuck-empty-intro',
        'Ask RubberDuck about the notebook you are working in, or start here:'
      )
    );
    const starts = element('div', 'jp-RubberDuck-starts');
    starts.setAttribute('role', 'group');
    starts.setAttribute('aria-label', 'Starting points');
    const start = (
      label: string,
      title: string,
      run: () => void
    ): HTMLButtonElement => {
      const item = element('button', 'jp-RubberDuck-start', label);
      item.type = 'button';
      item.title = title;
      item.addEventListener('click', run);
      starts.append(item);
      return item;
    };
    start(
      'Explain this notebook',
      'Ask what the open notebook does',
      () => void this._send('/explain this notebook')
    );
    start(
      'Fix the last error',
      'Ask for a fix of the newest failed cell of the open notebook',
      () => void this._fixLastError()
    );
    start(
      'Review the active cell',
      'Review the code of the active cell',
      () => void this._send('/review this cell')
    );
    this._indexStart = start(
      'Index this project',
      "Build the project's index, so answers can cite your files",
      () => void this._commands?.execute(INDEX_COMMAND)
    );
    node.append(starts);
    return node;
  }

  private _updateEmpty(): void {
    const empty = this._log.childElementCount === 0;
    this._empty.hidden = !empty;
    this._log.hidden = empty;
    if (this._indexStart) {
      this._indexStart.hidden = !this._commands?.hasCommand(INDEX_COMMAND);
    }
  }

  private async _fixLastError(): Promise<void> {
    const notebook = currentNotebook(this._notebooks);
    const cells = notebook?.content.widgets ?? [];
    const failed = [...cells].reverse().find(cell => cellError(cell) !== null);
    if (!notebook || !failed) {
      this._addNotice(
        'no_error',
        notebook
          ? `No cell of ${notebook.context.path} shows an error.`
          : 'Open a notebook with a failed cell first.'
      );
      return;
    }
    await this.fixCellError(notebook, failed);
  }

  private _notebookConversation(path: string): string | null {
    const known = this._readNotebookMap()[path];
    if (!known) {
      return null;
    }
    // A conversation deleted since is no home any more.
    const listed = this._list.conversations;
    return !listed.length || listed.some(c => c.id === known) ? known : null;
  }

  private _rememberNotebook(path: string): void {
    const map = this._readNotebookMap();
    if (map[path] === this._model.conversationId) {
      return;
    }
    map[path] = this._model.conversationId;
    try {
      window.localStorage.setItem(this._notebookKey, JSON.stringify(map));
    } catch {
      // storage disabled or full: "Fix this error" then opens a new conversation
    }
  }

  private _readNotebookMap(): Record<string, string> {
    try {
      const raw = window.localStorage.getItem(this._notebookKey);
      const parsed: unknown = raw ? JSON.parse(raw) : {};
      return parsed && typeof parsed === 'object'
        ? (parsed as Record<string, string>)
        : {};
    } catch {
      return {};
    }
  }

  // --- DOM --------------------------------------------------------------------------

  private _engineTitle(name: string): string {
    const engine = this._engines.find(e => e.name === name);
    if (engine) {
      return engine.title;
    }
    const words = name.replace(/_/g, ' ');
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  private _addMessage(role: 'user' | 'assistant' | 'notice'): HTMLElement {
    const node = element('div', 'jp-RubberDuck-message');
    node.dataset.role = role;
    this._log.append(node);
    this._scrollToEnd();
    return node;
  }

  private _addUserMessage(text: string): void {
    // The user's own text is shown verbatim, never parsed as HTML.
    this._addMessage('user').append(element('div', 'jp-RubberDuck-text', text));
  }

  private _addNotice(code: string, message: string, retryAfter?: number): void {
    const last = this._log.lastElementChild;
    const error = last?.querySelector('.jp-RubberDuck-error');
    if (
      error?.getAttribute('data-code') === code &&
      error.textContent === message
    ) {
      return;
    }
    const notice = element('div', 'jp-RubberDuck-error', message);
    notice.dataset.code = code;
    if (retryAfter !== undefined) {
      // The message already says when; this is for styling and tests.
      notice.dataset.retryAfter = String(retryAfter);
    }
    this._addMessage('notice').append(notice);
  }

  private _updateSendButton(): void {
    const streaming = this._turn !== null;
    const button = this._sendButton;
    button.dataset.state = streaming ? 'stop' : 'send';
    button.textContent = streaming ? 'Stop' : 'Send';
    button.title = streaming ? 'Stop the answer (Escape)' : 'Send (Enter)';
    button.disabled = (this._turn?.stopping ?? false) || this._sending;
  }

  private _updateStatus(): void {
    const connection = this._connection;
    const { state, text } = statusLine({
      connection: connection.state,
      // hook(resume): the answer is not over, it continues once reconnected.
      resuming: connection.resuming,
      retryDelaySeconds: connection.retryDelaySeconds,
      configured: connection.model?.configured ?? false,
      model: this._chosenModel() ?? connection.model?.name ?? null
    });
    this._status.dataset.state = state;
    this._status.textContent = text;
  }

  /**
   * Offer the models the server lists, keeping the user's pick while it is still
   * listed; with fewer than two there is nothing to choose and the picker hides.
   */
  private _updateModelPicker(
    models: string[],
    serverDefault: string | null
  ): void {
    this._models = models;
    this._serverModel = serverDefault;
    if (this._pickedModel !== null && !models.includes(this._pickedModel)) {
      this._pickedModel = null;
    }
    // The user's default model, while the server still allows it, beats the server's.
    const preferred = this._settings?.values.defaultModel ?? '';
    const fallback = models.includes(preferred) ? preferred : serverDefault;
    const select = this._modelSelect;
    select.replaceChildren(...models.map(name => new Option(name, name)));
    const fallbackListed = fallback !== null && models.includes(fallback);
    select.value =
      this._pickedModel ?? (fallbackListed ? fallback : (models[0] ?? ''));
    select.hidden = models.length < 2;
  }

  /** The model to ask for, or null to let the server use its default. */
  private _chosenModel(): string | null {
    const select = this._modelSelect;
    return select.hidden || !select.value ? null : select.value;
  }

  private _updateSpend(): void {
    const totals = this._totals;
    const text = spendText(totals);
    this._spend.textContent = text;
    this._spend.hidden = !text;
    this._spend.title = totals.unpriced_requests
      ? `${totals.unpriced_requests} of ${totals.requests} answers came from ` +
        'models without a known price, so the cost leaves them out'
      : '';
  }

  private _updateContextLine(): void {
    const label = contextLabel(this._notebooks);
    this._contextLine.textContent = label ? `Context: ${label}` : '';
    this._contextLine.hidden = !label;
  }

  private _isAtEnd(): boolean {
    const log = this._log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  private _scrollToEnd(): void {
    this._log.scrollTop = this._log.scrollHeight;
  }

  private _scrollToEndIfFollowing(): void {
    if (this._isAtEnd()) {
      this._scrollToEnd();
    }
  }

  private _connection: DuckConnection;
  private _api: DuckApi;
  private _notebooks: INotebookTracker | null;
  private _commands: CommandRegistry | null;
  private _services: IAnswerServices;
  private _storageKey: string;
  /** The first load of the remembered conversation; null until the panel is shown. */
  private _restored: Promise<void> | null = null;
  private _turn: ITurn | null = null;
  /** A question waiting for the kernel's variables before it goes out. */
  private _sending = false;
  /** hook(context): the chips and @ list; index.ts hands it the settings. */
  readonly contextBar: ContextBar;
  private _answers: AnswerView[] = [];
  private _engines: IEngineInfo[] = [];
  /** The model the user chose in this panel, null until they choose one. */
  private _pickedModel: string | null = null;
  /** What the current conversation has spent, from its done frames. */
  private _totals = emptyTotals();
  private _list: ConversationList;
  private _listButton: HTMLButtonElement;
  private _listTitle: HTMLSpanElement;
  private _task: TaskView;
  private _slash: SlashCompleter;
  private _log: HTMLDivElement;
  private _input: HTMLTextAreaElement;
  private _sendButton: HTMLButtonElement;
  private _newButton: HTMLButtonElement;
  private _modelSelect: HTMLSelectElement;
  private _spend: HTMLDivElement;
  private _status: HTMLDivElement;
  private _contextLine: HTMLDivElement;
  private _settings: DuckSettings | null;
  private _notebookKey: string;
  private _empty: HTMLElement;
  private _indexStart: HTMLButtonElement | null = null;
  private _model: ChatModel;
  private _queueNode: HTMLElement;
  /** The server's allowed models and default, from its hello. */
  private _models: string[] = [];
  private _serverModel: string | null = null;
}

/** What "Fix this error" says it sends: "Fix the KeyError in cell 2". */
function fixRequestText(context: IChatContext): string {
  const names = context.error?.match(
    /\b[A-Z]\w*(?:Error|Exception|Warning|Interrupt|Exit)\b/g
  );
  const what = names?.length ? `the ${names[names.length - 1]}` : 'the error';
  const where =
    context.cell_index !== undefined && context.cell_index !== null
      ? ` in cell ${context.cell_index + 1}`
      : '';
  return `Fix ${what}${where}`;
}

/** A stored answer's usage, shaped like the done frame it once ended with. */
function storedDone(message: IStoredMessage): IDoneFrame {
  const meta = message.meta;
  return {
    type: 'done',
    id: message.turn_id,
    usage: meta.usage ?? {
      prompt_tokens: 0,
      completion_tokens: 0,
      total_tokens: 0
    },
    finish_reason: 'stop',
    model: meta.model,
    cost_usd: meta.cost_usd,
    cached: false,
    attempts: [],
    engine: message.engine,
    conversation_id: null,
    message_id: message.id
  };
}

/**
 * The answer's footer: "gpt-4o-mini · 47 + 15 = 62 tokens · $0.00012", naming the
 * fallback when one answered and badging cached answers. Null when there is nothing
 * to say (a cancelled turn).
 */
function usageLine(frame: IDoneFrame): HTMLElement | null {
  const items: (string | HTMLElement)[] = [];
  const failover = failoverText(frame);
  if (failover) {
    items.push(element('span', 'jp-RubberDuck-failover', failover));
  } else if (frame.model) {
    items.push(frame.model);
  }
  if (frame.usage.total_tokens > 0) {
    items.push(formatTokens(frame.usage));
  }
  if (frame.cost_usd !== null) {
    items.push(formatCost(frame.cost_usd));
  }
  if (!items.length && !frame.cached) {
    return null;
  }
  const line = element('div', 'jp-RubberDuck-usage');
  for (const [index, item] of items.entries()) {
    if (index) {
      line.append(' · ');
    }
    line.append(item);
  }
  if (frame.cached) {
    line.append(
      element('span', 'jp-RubberDuck-cached', 'cached answer (provider paused)')
    );
  }
  const tooltip: string[] = [];
  if (frame.usage.total_tokens > 0) {
    tooltip.push('Tokens: prompt + completion = total');
  }
  const attempts = attemptsText(frame);
  if (attempts) {
    tooltip.push(`Attempts:\n${attempts}`);
  }
  line.title = tooltip.join('\n');
  return line;
}
