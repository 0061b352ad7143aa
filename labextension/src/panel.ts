import type { INotebookTracker } from '@jupyterlab/notebook';
import { UUID } from '@lumino/coreutils';
import { Message } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ConnectionState, DuckConnection } from './connection';
import { contextLabel, notebookContext } from './context';
import { renderAnswerMarkdown } from './markdown';
import {
  ErrorCode,
  IChatFrame,
  IChunkFrame,
  IDoneFrame,
  IErrorFrame,
  IHelloFrame,
  PROTOCOL_VERSION,
  ServerFrame
} from './protocol';
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

// If the server never confirms a cancel, give the user the input back anyway.
const STOP_FALLBACK_MS = 5_000;

// Rejections the user can fix by editing or resending, so their text comes back.
const RETRYABLE_CODES = new Set<string>([
  ErrorCode.FRAME_TOO_LARGE,
  ErrorCode.BUSY,
  ErrorCode.MODEL_NOT_ALLOWED
]);

/** The answer currently streaming. */
interface ITurn {
  id: string;
  question: string;
  node: HTMLElement;
  markdown: HTMLElement;
  text: string;
  nextSeq: number;
  /** Chunks that arrived ahead of a missing predecessor, by seq. */
  early: Map<number, string>;
  /** Pending animation frame for a re-render, 0 if none. */
  frame: number;
  stopping: boolean;
}

export namespace ChatPanel {
  export interface IOptions {
    connection: DuckConnection;
    /** Optional: without it questions go out with no notebook context. */
    notebooks?: INotebookTracker | null;
  }
}

/** The RubberDuck sidebar: a conversation log, an input box and a status line. */
export class ChatPanel extends Widget {
  constructor(options: ChatPanel.IOptions) {
    super();
    this.addClass('jp-RubberDuck');
    this._connection = options.connection;
    this._notebooks = options.notebooks ?? null;

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

    this._log = element('div', 'jp-RubberDuck-messages');
    this._log.setAttribute('role', 'log');
    this._log.setAttribute('aria-live', 'polite');
    this._log.setAttribute('aria-label', 'RubberDuck conversation');

    const footer = element('div', 'jp-RubberDuck-footer');
    this._contextLine = element('div', 'jp-RubberDuck-context');
    const compose = element('div', 'jp-RubberDuck-compose');
    this._input = element('textarea', 'jp-RubberDuck-input');
    this._input.rows = 3;
    this._input.setAttribute('aria-label', 'Message RubberDuck');
    this._input.placeholder =
      'Ask about your code… (Enter to send, Shift+Enter for a new line)';
    this._sendButton = element('button', 'jp-RubberDuck-send');
    this._sendButton.type = 'button';
    compose.append(this._input, this._sendButton);
    const statusBar = element('div', 'jp-RubberDuck-statusbar');
    this._status = element('div', 'jp-RubberDuck-status');
    this._status.setAttribute('role', 'status');
    this._spend = element('div', 'jp-RubberDuck-spend');
    statusBar.append(this._status, this._spend);
    footer.append(this._contextLine, compose, statusBar);

    this.node.append(header, this._log, footer);
    this._updateSendButton();
    this._updateStatus();
    this._updateSpend();
    this._updateContextLine();

    this._connection.stateChanged.connect(this._onStateChanged, this);
    this._connection.frameReceived.connect(this._onFrame, this);
    this._notebooks?.currentChanged.connect(this._updateContextLine, this);
    this._notebooks?.activeCellChanged.connect(this._updateContextLine, this);
  }

  /** Put the caret in the message box. */
  focusInput(): void {
    this._input.focus();
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
  }

  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    this.focusInput();
  }

  // --- user actions -----------------------------------------------------------------

  private _onKeyDown(event: KeyboardEvent): void {
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
      // While an answer streams Enter does nothing, so the draft is not lost.
      event.preventDefault();
      event.stopPropagation();
      this._send();
    }
  }

  private _onSendButton(): void {
    if (this._turn) {
      this._stop();
    } else {
      this._send();
    }
  }

  private _send(): void {
    const text = this._input.value;
    if (!text.trim() || this._turn) {
      return;
    }
    const id = UUID.uuid4();
    const frame: IChatFrame = {
      type: 'chat',
      v: PROTOCOL_VERSION,
      id,
      conversation_id: this._conversationId,
      text
    };
    const context = notebookContext(this._notebooks);
    if (Object.keys(context).length) {
      frame.context = context;
    }
    const model = this._chosenModel();
    if (model !== null) {
      frame.model = model;
    }
    if (!this._connection.send(frame)) {
      // Keep the text in the box so nothing typed is lost.
      this._addNotice(
        DISCONNECTED,
        'Not connected to the RubberDuck server, so this message was not sent. ' +
          'It is still in the box: send it again once the status line shows the model.'
      );
      this._connection.reconnectNow();
      return;
    }
    this._addUserMessage(text);
    this._input.value = '';
    this._startTurn(id, text);
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

  private _newConversation(): void {
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
    this._conversationId = UUID.uuid4();
    this._totals = emptyTotals();
    this._updateSpend();
    this.focusInput();
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
    switch (frame.type) {
      case 'hello':
        this._onHello(frame);
        break;
      case 'chunk':
        this._onChunk(frame);
        break;
      case 'done':
        this._onDone(frame);
        break;
      case 'error':
        this._onError(frame);
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
    this._updateModelPicker(frame.models, frame.model.name);
    // The connection reported 'open' before this frame reached the picker.
    this._updateStatus();
  }

  private _onChunk(frame: IChunkFrame): void {
    const turn = this._turn;
    if (!turn || frame.id !== turn.id || frame.seq < turn.nextSeq) {
      return;
    }
    turn.early.set(frame.seq, frame.text);
    let next = turn.early.get(turn.nextSeq);
    while (next !== undefined) {
      turn.early.delete(turn.nextSeq);
      turn.text += next;
      turn.nextSeq += 1;
      next = turn.early.get(turn.nextSeq);
    }
    if (!turn.frame) {
      // Re-parsing the whole answer per chunk is cheap once per frame, not per chunk.
      turn.frame = requestAnimationFrame(() => {
        turn.frame = 0;
        this._render(turn);
      });
    }
  }

  private _onDone(frame: IDoneFrame): void {
    const turn = this._turn;
    if (!turn || frame.id !== turn.id) {
      return;
    }
    this._flush(turn);
    this._endTurn(turn);
    if (frame.finish_reason === 'cancelled') {
      turn.node.append(element('div', 'jp-RubberDuck-stopped', '(stopped)'));
    } else if (frame.finish_reason !== 'stop') {
      turn.node.append(
        element(
          'div',
          'jp-RubberDuck-finish',
          `(the answer ended early: ${frame.finish_reason})`
        )
      );
    }
    const usage = usageLine(frame);
    if (usage) {
      turn.node.append(usage);
    }
    addAnswer(this._totals, frame);
    this._updateSpend();
    this._scrollToEnd();
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
      if (!turn.text) {
        // Nothing was answered: show the notice alone, not an empty model answer.
        turn.node.remove();
      }
      if (RETRYABLE_CODES.has(frame.code) && !this._input.value) {
        this._input.value = turn.question;
      }
    }
    this._addNotice(frame.code, frame.message, frame.retry_after);
  }

  // --- turns ------------------------------------------------------------------------

  private _startTurn(id: string, question: string): void {
    const node = this._addMessage('assistant');
    node.dataset.streaming = 'true';
    node.setAttribute('aria-busy', 'true');
    const markdown = element('div', 'jp-RubberDuck-markdown');
    node.append(markdown);
    this._turn = {
      id,
      question,
      node,
      markdown,
      text: '',
      nextSeq: 0,
      early: new Map(),
      frame: 0,
      stopping: false
    };
    this._updateSendButton();
  }

  /** Render everything received, including chunks stranded behind a gap. */
  private _flush(turn: ITurn): void {
    const seqs = [...turn.early.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      turn.text += turn.early.get(seq);
    }
    turn.early.clear();
    cancelAnimationFrame(turn.frame);
    turn.frame = 0;
    this._render(turn);
  }

  private _render(turn: ITurn): void {
    const follow = this._isAtEnd();
    turn.markdown.innerHTML = renderAnswerMarkdown(turn.text);
    if (follow) {
      this._scrollToEnd();
    }
  }

  private _endTurn(turn: ITurn): void {
    cancelAnimationFrame(turn.frame);
    turn.frame = 0;
    delete turn.node.dataset.streaming;
    turn.node.removeAttribute('aria-busy');
    if (this._turn === turn) {
      this._turn = null;
    }
    this._updateSendButton();
  }

  private _finishAsStopped(turn: ITurn): void {
    this._flush(turn);
    this._endTurn(turn);
    turn.node.append(element('div', 'jp-RubberDuck-stopped', '(stopped)'));
  }

  // --- DOM --------------------------------------------------------------------------

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
    button.disabled = this._turn?.stopping ?? false;
  }

  private _updateStatus(): void {
    const connection = this._connection;
    let state: string;
    let text: string;
    switch (connection.state) {
      case 'connecting':
        state = 'connecting';
        text = 'Connecting…';
        break;
      case 'closed':
        state = 'disconnected';
        text = `Disconnected. Reconnecting in ${connection.retryDelaySeconds} s…`;
        break;
      case 'open': {
        const model = connection.model;
        if (model?.configured) {
          state = 'ready';
          text = `Model: ${this._chosenModel() ?? model.name ?? 'configured'}`;
        } else {
          state = 'no-model';
          text = 'No model configured';
        }
        break;
      }
    }
    this._status.dataset.state = state;
    this._status.textContent = text;
  }

  /**
   * Offer the models the server lists, keeping the user's pick while it is still
   * listed; with fewer than two there is nothing to choose and the picker hides.
   */
  private _updateModelPicker(models: string[], fallback: string | null): void {
    if (this._pickedModel !== null && !models.includes(this._pickedModel)) {
      this._pickedModel = null;
    }
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

  private _connection: DuckConnection;
  private _notebooks: INotebookTracker | null;
  private _conversationId = UUID.uuid4();
  private _turn: ITurn | null = null;
  /** The model the user chose in this panel, null until they choose one. */
  private _pickedModel: string | null = null;
  /** What the current conversation has spent, from its done frames. */
  private _totals = emptyTotals();
  private _log: HTMLDivElement;
  private _input: HTMLTextAreaElement;
  private _sendButton: HTMLButtonElement;
  private _newButton: HTMLButtonElement;
  private _modelSelect: HTMLSelectElement;
  private _spend: HTMLDivElement;
  private _status: HTMLDivElement;
  private _contextLine: HTMLDivElement;
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
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
