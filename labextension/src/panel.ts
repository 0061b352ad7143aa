/**
 * The RubberDuck sidebar, composed: ChatModel holds the state (conversation, loading,
 * the answer streaming, the queue, the spend), the views draw it (header, conversation
 * bar, task, log, empty state, composer, status line), and this file connects them to
 * the WebSocket: it sends questions and cancels, and hands the server's frames on.
 */
import type { Cell } from '@jupyterlab/cells';
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror'; // hook(answers)
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { CommandRegistry } from '@lumino/commands';
import { UUID } from '@lumino/coreutils';
import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { AgentController } from './agent/controller';
import { IAnswerServices } from './answer';
import { finishLine } from './answerfooter';
import { ApiError, describeError, DuckApi } from './api';
import {
  ChatModel,
  IConversationChange,
  LoadFailure,
  LoadOutcome
} from './chatmodel';
import { ContextBar } from './chips'; // hook(context)
import { openCitation } from './citations';
import { Composer } from './composer';
import { ConnectionState, DuckConnection } from './connection';
import { cellContext, cellError, currentNotebook } from './context';
import { ConversationBar } from './conversationbar';
import { element } from './dom';
import { EmptyState } from './emptystate';
import { fixRequestText } from './fixerror';
import { kernelVariables } from './kernelvars';
import { LiveAnswer } from './liveanswer';
import { ConversationMemory } from './memory';
import { MessageLog } from './messagelog';
import { ModelPicker } from './modelpicker';
import { EnginesModel, IPluginNotice } from './plugins';
import {
  ErrorCode,
  IChatContext,
  IChatFrame,
  ICitation,
  IConversationDetail,
  IDoneFrame,
  IEngineInfo,
  IErrorFrame,
  IHelloFrame,
  PROTOCOL_VERSION,
  ServerFrame
} from './protocol';
import { DuckSettings, IDuckSettingsValues } from './settings';
import { slashCommands } from './slash';
import { StatusLine } from './statusline';
import { SuggestionActions } from './suggestion';
import { TaskView } from './task';

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
    this._notebooks = options.notebooks ?? null;
    this._commands = options.commands ?? null;
    this._settings = options.settings ?? null;
    this._memory = new ConversationMemory(options.api.baseUrl);
    this._agent = new AgentController({
      send: frame => this._connection.send(frame),
      notebooks: this._notebooks,
      commands: this._commands,
      languages: options.languages ?? null
    });
    this._model = new ChatModel(
      this._memory.current ?? UUID.uuid4(),
      options.api
    );
    const services: IAnswerServices = {
      engineTitle: name => this._engineTitle(name),
      openCitation: citation => this._openCitation(citation),
      suggestions: new SuggestionActions(options.api, this._notebooks),
      // hook(answers): code blocks' Insert/Replace/diff act on the active notebook.
      codeBlocks: {
        notebooks: this._notebooks,
        languages: options.languages ?? null
      }
    };

    this._picker = new ModelPicker(() => this._updateStatus());
    this._newButton = element(
      'button',
      'jp-RubberDuck-new',
      'New conversation'
    );
    this._newButton.type = 'button';
    this._newButton.title = 'Clear the view and start a new conversation';
    this._newButton.addEventListener('click', () => this._newConversation());
    const header = element('div', 'jp-RubberDuck-header');
    // Grouped so a narrow sidebar wraps both under the title rather than squeezing one.
    const actions = element('div', 'jp-RubberDuck-actions');
    actions.append(this._picker.node, this._newButton);
    header.append(
      element('span', 'jp-RubberDuck-title', 'RubberDuck'),
      actions
    );

    this._bar = new ConversationBar(options.api, {
      current: () => this._model.conversationId,
      open: id => void this._switchTo(id),
      currentDeleted: () => this._newConversation()
    });
    this._task = new TaskView();
    // Whatever adds to or clears the log, the starting points show only when it is empty.
    this._log = new MessageLog(services, () => this._updateEmpty());
    this._empty = new EmptyState({
      explainNotebook: () => void this._send('/explain this notebook'),
      fixLastError: () => void this._fixLastError(),
      reviewCell: () => void this._send('/review this cell'),
      indexProject: () => void this._commands?.execute(INDEX_COMMAND),
      canIndex: () => this._commands?.hasCommand(INDEX_COMMAND) ?? false
    });
    this._composer = new Composer(this._notebooks, {
      submit: () => {
        if (this._turn) {
          // While an answer streams, the message waits its turn (shown, removable).
          this._enqueue();
        } else {
          void this._send();
        }
      },
      press: () => (this._turn ? this._stop() : void this._send()),
      removeQueued: index => {
        this._model.removeQueued(index);
        this.focusInput();
      }
    });
    this.contextBar = this._composer.contextBar;
    this._status = new StatusLine();
    this._composer.node.append(this._status.node);

    this.node.append(
      header,
      ...this._bar.nodes,
      this._task.node,
      this._log.node,
      this._empty.node,
      this._composer.node
    );

    const model = this._model;
    model.queueChanged.connect((_, queue) => this._composer.showQueue(queue));
    model.conversationChanged.connect(this._onConversationChanged, this);
    model.loaded.connect(this._onLoaded, this);
    model.loadFailed.connect(this._onLoadFailed, this);
    model.loadingChanged.connect((_, busy) => this._log.setBusy(busy));
    model.totalsChanged.connect((_, totals) => this._status.showSpend(totals));
    this._engines.enginesChanged.connect(this._onEnginesChanged, this);
    this._engines.noticeAdded.connect(this._onPluginNotice, this);
    this._connection.stateChanged.connect(this._onStateChanged, this);
    this._connection.frameReceived.connect(this._onFrame, this);
    this._commands?.commandChanged.connect(this._updateEmpty, this);
    this._updateEmpty();
    this._updateStatus();
    this._status.showSpend(model.totals);
    if (this._settings) {
      this._settings.changed.connect(this._applySettings, this);
      this._applySettings(this._settings, this._settings.values);
    }
  }

  /** hook(context): the chips and @ list; index.ts hands it the settings. */
  readonly contextBar: ContextBar;

  /** The conversation new messages go to. */
  get conversationId(): string {
    return this._model.conversationId;
  }

  /** Put the caret in the message box. */
  focusInput(): void {
    this._composer.focus();
  }

  /** Open the conversation list with the keyboard focus on the current row. */
  openConversations(): void {
    this._bar.toggle(true);
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
    await this._connection.whenOpen(CONNECT_WAIT_MS);
    // The fix belongs to that notebook's conversation, not whichever one is open.
    const home = this._memory.notebookHome(
      notebook.context.path,
      this._bar.conversations
    );
    if (home !== this._model.conversationId) {
      if (this._turn) {
        this._addNotice(
          BUSY_HERE,
          'An answer is still coming in; try again once it has finished.'
        );
        return false;
      }
      if (!home) {
        this._newConversation();
      } else if ((await this._switchTo(home)) !== 'loaded') {
        return false; // the log says why; the fix must not land in another conversation
      }
    }
    // Said as the user would say it; the engine is forced, so no "/fix" is needed.
    const engine = this._engines.byCommand('/fix');
    const text = fixRequestText(context);
    return engine
      ? this._send(text, { notebook, context, engine: engine.name })
      : this._send('/fix', { notebook, context });
  }

  handleEvent(event: Event): void {
    if (event.type === 'keydown') {
      this._onKeyDown(event as KeyboardEvent);
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._turn?.end();
    Signal.disconnectReceiver(this);
    this._composer.dispose();
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.node.addEventListener('keydown', this);
  }

  protected onBeforeDetach(msg: Message): void {
    this.node.removeEventListener('keydown', this);
    super.onBeforeDetach(msg);
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Connect lazily: a sidebar nobody opens should not hold a socket.
    this._connection.start();
    if (!this._restored) {
      this._restored = this._model.restore().then(() => undefined);
      void this._bar.refresh();
    }
  }

  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    this.focusInput();
  }

  // --- user actions -----------------------------------------------------------------

  /** Escape anywhere in the panel: close the conversation list, else stop the answer. */
  private _onKeyDown(event: KeyboardEvent): void {
    if (event.key !== 'Escape') {
      return;
    }
    if (this._bar.isOpen) {
      event.preventDefault();
      event.stopPropagation();
      this._bar.closeToToggle();
    } else if (this._turn) {
      event.preventDefault();
      event.stopPropagation();
      this._stop();
    }
  }

  /**
   * Send `text` (default: the message box). The kernel's variables are asked for first,
   * which takes at most VARIABLES_TIMEOUT_MS.
   */
  private async _send(text?: string, about?: ISendOptions): Promise<boolean> {
    const input = this._composer.input;
    const fromBox = text === undefined;
    const message = fromBox ? input.value : text;
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
      // The agent may offer its run tools: this sidebar answers approvals.
      context.agent = this._agent.capabilities(
        this._settings?.values.autoApplyEdits ?? false
      );
      frame.context = context;
      const model = this._picker.chosen;
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
      this._log.addUserMessage(message);
      this.contextBar.sent(); // hook(context)
      if (fromBox && input.value === message) {
        input.value = '';
      }
      this._memory.current = this._model.conversationId;
      // The notebook the user is in: "Fix this error" there comes back here.
      const home = notebook ?? currentNotebook(this._notebooks);
      if (home) {
        this._memory.rememberNotebook(
          home.context.path,
          this._model.conversationId
        );
      }
      this._startTurn(id, message);
      return true;
    } finally {
      this._sending = false;
      this._updateSendButton();
    }
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
    // Nothing the agent asked for runs once the user said Stop.
    this._agent.endTurn(turn.id, 'cancelled');
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

  private _newConversation(): void {
    this._model.newConversation(UUID.uuid4());
    this.focusInput();
  }

  private async _switchTo(id: string): Promise<LoadOutcome> {
    this._bar.toggle(false);
    // The view changes once the conversation has loaded (ChatModel.switchTo).
    const outcome = await this._model.switchTo(id);
    this.focusInput();
    return outcome;
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

  // --- the model's conversation -------------------------------------------------------

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
    this._agent.clear();
    this._log.clear();
    this._task.show(null);
    this._memory.current = change.id;
    this._bar.showCurrent();
  }

  /** Draw the conversation the model loaded, in the order it holds the messages. */
  private _onLoaded(_: ChatModel, detail: IConversationDetail): void {
    this._log.drawConversation(this._model.messages, detail.suggestions);
    this._task.show(detail.conversation.task);
    this._bar.showTitle(detail.conversation.title);
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

  // --- server frames ----------------------------------------------------------------

  private _onStateChanged(_: DuckConnection, state: ConnectionState): void {
    this._updateStatus();
    const turn = this._turn;
    if (state === 'closed' && turn) {
      turn.flush();
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
    if (frame.type === 'plugins') {
      // Outside every turn: the answer streaming (if any) goes on untouched.
      this._engines.apply(frame);
      return;
    }
    if (frame.type === 'error') {
      this._onError(frame);
      return;
    }
    if (frame.type === 'approval.closed') {
      // Answered in another tab, timed out or cancelled: the card clears wherever it is.
      this._agent.onClosed(frame);
      return;
    }
    const turn = this._turn;
    if (!turn || frame.id !== turn.id) {
      return;
    }
    if (frame.type === 'approval') {
      turn.apply(frame);
      this._agent.onApproval(frame, turn.answer);
      this._log.scrollToEndIfFollowing();
    } else if (frame.type === 'task') {
      this._task.show(frame.task);
    } else if (frame.type === 'done') {
      this._onDone(turn, frame);
    } else {
      turn.apply(frame);
      if (frame.type === 'step') {
        this._agent.onStep(frame);
      }
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
    // After a reconnect, the new socket's list replaces the old one.
    this._engines.hello(frame);
    this._picker.setModels(
      frame.models,
      frame.model.name,
      this._settings?.values.defaultModel ?? ''
    );
    // The connection reported 'open' before this frame reached the picker.
    this._updateStatus();
  }

  /** The hello or a plugins frame changed the engines: the `/` list and badges follow. */
  private _onEnginesChanged(
    _: EnginesModel,
    engines: readonly IEngineInfo[]
  ): void {
    this._composer.slash.setCommands(slashCommands(engines));
    this._log.refreshEngineTitles();
  }

  /** A plugin changed state: say so in the log, without pulling the view down to it. */
  private _onPluginNotice(_: EnginesModel, notice: IPluginNotice): void {
    this._log.addNotice(notice.code, notice.message, {
      level: notice.level,
      follow: true
    });
  }

  private _onDone(turn: LiveAnswer, frame: IDoneFrame): void {
    turn.flush();
    this._endTurn(turn);
    turn.showDone(frame);
    this._model.addUsage(frame);
    this._log.scrollToEndIfFollowing();
    // The first answer names the conversation; keep the list and its title current.
    void this._bar.refresh();
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
      turn.flush();
      this._endTurn(turn);
      if (!turn.answer.hasContent) {
        // Nothing was answered: show the notice alone, not an empty model answer.
        this._log.removeAnswer(turn.answer);
      }
      const input = this._composer.input;
      if (RETRYABLE_CODES.has(frame.code) && !input.value) {
        input.value = turn.question;
      }
      // hook(resume): what streamed before the drop stays, marked as incomplete.
      if (
        frame.code === ErrorCode.RESUME_UNAVAILABLE &&
        turn.answer.hasContent
      ) {
        turn.answer.appendLine(
          finishLine('(incomplete: the connection dropped)')
        );
      }
      void this._bar.refresh();
    }
    this._addNotice(frame.code, frame.message, frame.retry_after);
    if (turn) {
      this._sendQueued();
    }
  }

  // --- turns ------------------------------------------------------------------------

  private _startTurn(id: string, question: string): void {
    this._model.startTurn(id, question);
    this._turn = new LiveAnswer(id, question, this._log, this._model);
    this._updateSendButton();
  }

  private _endTurn(turn: LiveAnswer): void {
    turn.end();
    this._agent.endTurn(turn.id, 'cancelled');
    if (this._turn === turn) {
      this._turn = null;
    }
    if (this._model.turn?.id === turn.id) {
      this._model.endTurn();
    }
    this._updateSendButton();
  }

  private _finishAsStopped(turn: LiveAnswer): void {
    turn.flush();
    this._endTurn(turn);
    turn.showStopped();
    this._sendQueued();
  }

  /** Queue the box's text to go out when the current answer ends. */
  private _enqueue(): void {
    const input = this._composer.input;
    if (this._model.enqueue(input.value)) {
      input.value = '';
      this._composer.slash.close();
    }
  }

  /** Send the oldest queued message, once the answer before it has ended. */
  private _sendQueued(): void {
    const next = this._model.takeQueued();
    if (next === null) {
      return;
    }
    void this._send(next).then(sent => {
      const input = this._composer.input;
      if (!sent && !input.value) {
        // Not sent (disconnected): give the text back rather than lose it.
        input.value = next;
      }
    });
  }

  // --- views ------------------------------------------------------------------------

  private _addNotice(code: string, message: string, retryAfter?: number): void {
    this._log.addNotice(code, message, { retryAfter });
  }

  private _applySettings(
    _: DuckSettings,
    values: Readonly<IDuckSettingsValues>
  ): void {
    const size = values.chatFontSize ? `${values.chatFontSize}px` : '';
    this._log.node.style.fontSize = size;
    this._composer.setFontSize(size);
    this._empty.setFontSize(size);
    if (this._picker.hasModels) {
      this._picker.setPreferred(values.defaultModel);
      this._updateStatus();
    }
  }

  private _updateEmpty(): void {
    const empty = this._log.isEmpty;
    this._empty.update(empty);
    this._log.node.hidden = empty;
  }

  private _engineTitle(name: string): string {
    const title = this._engines.title(name);
    if (title !== null) {
      return title;
    }
    const words = name.replace(/_/g, ' ');
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  private _updateSendButton(): void {
    this._composer.setStreaming(
      this._turn !== null,
      (this._turn?.stopping ?? false) || this._sending
    );
  }

  private _updateStatus(): void {
    const connection = this._connection;
    this._status.show({
      connection: connection.state,
      // hook(resume): the answer is not over, it continues once reconnected.
      resuming: connection.resuming,
      retryDelaySeconds: connection.retryDelaySeconds,
      configured: connection.model?.configured ?? false,
      model: this._picker.chosen ?? connection.model?.name ?? null
    });
  }

  private _connection: DuckConnection;
  private _notebooks: INotebookTracker | null;
  private _commands: CommandRegistry | null;
  private _settings: DuckSettings | null;
  private _memory: ConversationMemory;
  /** The agent's approvals and runs, and the notebook following its steps. */
  private _agent: AgentController;
  private _model: ChatModel;
  /** The first load of the remembered conversation; null until the panel is shown. */
  private _restored: Promise<void> | null = null;
  /** The answer streaming now, as drawn. */
  private _turn: LiveAnswer | null = null;
  /** A question waiting for the kernel's variables before it goes out. */
  private _sending = false;
  /** The engines of the hello and plugins frames (the slash commands, badge titles). */
  private _engines = new EnginesModel();
  private _picker: ModelPicker;
  private _newButton: HTMLButtonElement;
  private _bar: ConversationBar;
  private _task: TaskView;
  private _log: MessageLog;
  private _empty: EmptyState;
  private _composer: Composer;
  private _status: StatusLine;
}
