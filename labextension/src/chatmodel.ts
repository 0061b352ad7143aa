/**
 * The chat's state without a DOM: the current conversation and its loading, the answer
 * streaming (its chunks put back in order), the messages queued behind it and the status
 * line. The panel draws what this says and listens to its signals; unit tests drive it
 * directly with a fake API (labextension/test/chatmodel.test.ts).
 *
 * Loading: every load is numbered, and only the newest may land. Switching away, starting
 * a new conversation or starting an answer supersedes a load still on its way, so a slow
 * answer for a conversation the user already left never replaces what they look at. A
 * switch takes effect when its conversation has loaded: until then, and if it fails, the
 * conversation shown stays the current one.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  ErrorCode,
  IConversationDetail,
  IDoneFrame,
  IStoredMessage,
  IUsageTotals
} from './protocol';
import { addAnswer, emptyTotals } from './usage';

/** A chunk of an answer's text, of its main text or of a reasoning step. */
export interface IChunk {
  text: string;
  step?: string;
}

/** The answer streaming now. */
export interface ITurnState {
  readonly id: string;
  readonly question: string;
  /** Stop asked for, not yet confirmed. */
  stopping: boolean;
}

export type StatusState = 'connecting' | 'disconnected' | 'ready' | 'no-model';

/** What the status line says, from the connection and the model in use. */
export interface IStatusInput {
  connection: 'connecting' | 'open' | 'closed';
  /** The connection is back to continue an answer (resume.ts). */
  resuming: boolean;
  retryDelaySeconds: number;
  configured: boolean;
  /** The model questions go to: the user's choice, else the server's. */
  model: string | null;
}

export function statusLine(input: IStatusInput): {
  state: StatusState;
  text: string;
} {
  switch (input.connection) {
    case 'connecting':
      return {
        state: 'connecting',
        text: input.resuming
          ? 'Connection lost. Reconnecting to continue the answer…'
          : 'Connecting…'
      };
    case 'closed':
      return {
        state: 'disconnected',
        text: `Disconnected. Reconnecting in ${input.retryDelaySeconds} s…`
      };
    case 'open':
      return input.configured
        ? { state: 'ready', text: `Model: ${input.model ?? 'configured'}` }
        : { state: 'no-model', text: 'No model configured' };
  }
}

/** What the model needs of the REST API: one conversation, null when there is none. */
export interface IConversationSource {
  getConversation(id: string): Promise<IConversationDetail | null>;
}

/** How a stored answer ended, as its last line says it. */
export type AnswerEnding =
  'complete' | 'streaming' | 'cut-off' | 'stopped' | 'failed';

/** A stored message as the log shows it, in the order the server sent them. */
export type ShownMessage =
  | {
      kind: 'question';
      message: IStoredMessage;
      /** Still being answered when the conversation was read. */
      waiting: boolean;
    }
  | {
      kind: 'answer';
      message: IStoredMessage;
      ending: AnswerEnding;
      /** A failed answer's text is its error, shown as the ending, not as text. */
      showText: boolean;
    }
  | {
      /** A turn refused before any engine ran (busy, not found): a notice, as it was live. */
      kind: 'refusal';
      message: IStoredMessage;
      code: string;
      text: string;
    };

/**
 * The messages of a stored conversation as the log shows them, in the server's order
 * (it sends each question before its own answer: context/memory.py display_order).
 */
export function shownMessages(detail: IConversationDetail): ShownMessage[] {
  // An answer still streaming is stored as it goes (status 'pending'): it is shown,
  // and its question still says it is being answered.
  const answered = new Set(
    detail.messages
      .filter(m => m.role === 'assistant' && m.status !== 'pending')
      .map(m => m.turn_id)
  );
  return detail.messages.map((message): ShownMessage => {
    if (message.role === 'user') {
      return {
        kind: 'question',
        message,
        waiting: !answered.has(message.turn_id) && message.status === 'pending'
      };
    }
    const meta = message.meta;
    const failed = message.status === 'error';
    if (failed && !meta.route) {
      return {
        kind: 'refusal',
        message,
        code: meta.error?.code ?? ErrorCode.INTERNAL,
        text: meta.error?.message || message.content
      };
    }
    // The status alone marks a cut-off answer: its text carries no mark of its own.
    const ending: AnswerEnding = meta.error?.cancelled
      ? 'stopped'
      : meta.error
        ? 'failed'
        : message.status === 'incomplete'
          ? 'cut-off'
          : message.status === 'pending'
            ? 'streaming'
            : 'complete';
    return { kind: 'answer', message, ending, showText: !failed };
  });
}

/** A stored answer's usage, shaped like the done frame it once ended with. */
export function storedDone(message: IStoredMessage): IDoneFrame {
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

/** Why a conversation did not load: it does not exist, or the request failed. */
export type LoadFailure =
  | { id: string; reason: 'missing' }
  | { id: string; reason: 'error'; error: unknown };

/** What happened to a load: it landed, failed, or a newer one (or an answer) beat it. */
export type LoadOutcome = 'loaded' | 'failed' | 'superseded';

/** The conversation the chat moved to, and the answer it left streaming (to cancel). */
export interface IConversationChange {
  id: string;
  left: Readonly<ITurnState> | null;
}

export class ChatModel {
  constructor(conversationId: string, source?: IConversationSource | null) {
    this._conversationId = conversationId;
    this._source = source ?? null;
  }

  get conversationId(): string {
    return this._conversationId;
  }

  /** The current conversation as last loaded, null for a new one (or before loading). */
  get conversation(): IConversationDetail | null {
    return this._conversation;
  }

  /** The loaded conversation's messages as the log shows them, in the server's order. */
  get messages(): readonly ShownMessage[] {
    return this._messages;
  }

  /** What the current conversation has spent: its stored answers and those since. */
  get totals(): Readonly<IUsageTotals> {
    return this._totals;
  }

  /** A load is on its way. */
  get loading(): boolean {
    return this._loading !== 0;
  }

  /** The answer streaming now, null between answers. */
  get turn(): Readonly<ITurnState> | null {
    return this._turn;
  }

  /** Messages typed while an answer streamed, oldest first. */
  get queue(): readonly string[] {
    return this._queue;
  }

  /**
   * Emits when the chat moves to another conversation (switched to, or a new one): the
   * view clears what it shows. A switched-to conversation's `loaded` follows at once.
   */
  get conversationChanged(): ISignal<ChatModel, IConversationChange> {
    return this._conversationChanged;
  }

  /** Emits the current conversation once a load of it landed: the view draws it. */
  get loaded(): ISignal<ChatModel, IConversationDetail> {
    return this._loaded;
  }

  /** Emits when a load the user asked for failed; the current conversation stays. */
  get loadFailed(): ISignal<ChatModel, LoadFailure> {
    return this._loadFailed;
  }

  get totalsChanged(): ISignal<ChatModel, Readonly<IUsageTotals>> {
    return this._totalsChanged;
  }

  /** Emits when a load starts or settles (`loading`). */
  get loadingChanged(): ISignal<ChatModel, boolean> {
    return this._loadingChanged;
  }

  /** Emits when an answer starts (the turn) or ends (null). */
  get turnChanged(): ISignal<ChatModel, Readonly<ITurnState> | null> {
    return this._turnChanged;
  }

  get queueChanged(): ISignal<ChatModel, readonly string[]> {
    return this._queueChanged;
  }

  /**
   * Load the current conversation again, as the page restores it after a reload. Quiet:
   * a remembered id the server does not know is a conversation never sent, not an error.
   */
  async restore(): Promise<LoadOutcome> {
    const id = this._conversationId;
    const result = await this._fetch(id);
    if (result.kind === 'superseded') {
      return 'superseded';
    }
    if (result.kind !== 'loaded') {
      return 'failed';
    }
    this._show(result.detail);
    return 'loaded';
  }

  /**
   * Show conversation `id`, once it has loaded. Moving to another conversation leaves the
   * streaming answer (conversationChanged names it, for the caller to cancel; the server
   * keeps what it saved) and drops the queue, which was meant for the one left. The same
   * conversation is loaded again, except while an answer streams into it.
   * A failed load (loadFailed) keeps the current conversation as it was.
   */
  async switchTo(id: string): Promise<LoadOutcome> {
    if (id === this._conversationId && this._turn) {
      return 'loaded'; // already here, and the answer coming in is newer than any load
    }
    const result = await this._fetch(id);
    switch (result.kind) {
      case 'superseded':
        return 'superseded';
      case 'missing':
        this._loadFailed.emit({ id, reason: 'missing' });
        return 'failed';
      case 'error':
        this._loadFailed.emit({ id, reason: 'error', error: result.error });
        return 'failed';
    }
    if (id !== this._conversationId) {
      this._move(id);
    }
    this._show(result.detail);
    return 'loaded';
  }

  /** Start conversation `id`, empty; a load still on its way is dropped. */
  newConversation(id: string): void {
    this._supersede();
    this._move(id);
  }

  startTurn(id: string, question: string): Readonly<ITurnState> {
    // The user asked something here: a load still on its way would replace the view.
    this._supersede();
    this._turn = { id, question, stopping: false };
    this._nextSeq = 0;
    this._early.clear();
    this._turnChanged.emit(this._turn);
    return this._turn;
  }

  /** Mark the streaming answer as being stopped; false if there is none (or already). */
  markStopping(): boolean {
    if (!this._turn || this._turn.stopping) {
      return false;
    }
    this._turn.stopping = true;
    this._turnChanged.emit(this._turn);
    return true;
  }

  /**
   * A chunk of turn `id` with sequence number `seq`: the chunks now ready to show, in
   * order (none while a predecessor is missing; a repeat is dropped).
   */
  acceptChunk(id: string, seq: number, chunk: IChunk): IChunk[] {
    if (!this._turn || this._turn.id !== id || seq < this._nextSeq) {
      return [];
    }
    this._early.set(seq, chunk);
    const ready: IChunk[] = [];
    let next = this._early.get(this._nextSeq);
    while (next !== undefined) {
      this._early.delete(this._nextSeq);
      ready.push(next);
      this._nextSeq += 1;
      next = this._early.get(this._nextSeq);
    }
    return ready;
  }

  /** Chunks stranded behind a gap, in order: shown when the answer ends anyway. */
  flush(): IChunk[] {
    const seqs = [...this._early.keys()].sort((a, b) => a - b);
    const out = seqs.map(seq => this._early.get(seq) as IChunk);
    if (seqs.length) {
      this._nextSeq = Math.max(this._nextSeq, seqs[seqs.length - 1] + 1);
    }
    this._early.clear();
    return out;
  }

  /** An answer of this conversation ended (its done frame): count what it spent. */
  addUsage(frame: IDoneFrame): void {
    addAnswer(this._totals, frame);
    this._totalsChanged.emit(this._totals);
  }

  /** The answer is over (done, error, stop, dropped). */
  endTurn(): void {
    if (!this._turn) {
      return;
    }
    this._turn = null;
    this._early.clear();
    this._turnChanged.emit(null);
  }

  enqueue(text: string): boolean {
    if (!text.trim()) {
      return false;
    }
    this._queue.push(text);
    this._queueChanged.emit(this._queue);
    return true;
  }

  removeQueued(index: number): void {
    if (index >= 0 && index < this._queue.length) {
      this._queue.splice(index, 1);
      this._queueChanged.emit(this._queue);
    }
  }

  /** The oldest queued message, taken off the queue; null when none or still answering. */
  takeQueued(): string | null {
    if (this._turn || !this._queue.length) {
      return null;
    }
    const text = this._queue.shift() as string;
    this._queueChanged.emit(this._queue);
    return text;
  }

  clearQueue(): void {
    if (this._queue.length) {
      this._queue = [];
      this._queueChanged.emit(this._queue);
    }
  }

  /** Fetch `id` as load number n; only the newest load's result counts. */
  private async _fetch(
    id: string
  ): Promise<
    | { kind: 'loaded'; detail: IConversationDetail }
    | { kind: 'missing' }
    | { kind: 'error'; error: unknown }
    | { kind: 'superseded' }
  > {
    const seq = ++this._loadSeq;
    this._setLoading(seq);
    let detail: IConversationDetail | null;
    try {
      detail = this._source ? await this._source.getConversation(id) : null;
    } catch (error) {
      return this._settle(seq, { kind: 'error', error });
    }
    return this._settle(
      seq,
      detail ? { kind: 'loaded', detail } : { kind: 'missing' }
    );
  }

  private _settle<T>(seq: number, result: T): T | { kind: 'superseded' } {
    if (seq !== this._loadSeq) {
      return { kind: 'superseded' };
    }
    this._setLoading(0);
    return result;
  }

  /** Drop whatever load is on its way. */
  private _supersede(): void {
    this._loadSeq += 1;
    this._setLoading(0);
  }

  private _setLoading(seq: number): void {
    const was = this.loading;
    this._loading = seq;
    if (was !== this.loading) {
      this._loadingChanged.emit(this.loading);
    }
  }

  private _move(id: string): void {
    const left = this._turn;
    this.endTurn();
    this.clearQueue();
    this._conversationId = id;
    this._conversation = null;
    this._messages = [];
    this._totals = emptyTotals();
    this._conversationChanged.emit({ id, left });
    this._totalsChanged.emit(this._totals);
  }

  private _show(detail: IConversationDetail): void {
    this._conversation = detail;
    this._messages = shownMessages(detail);
    this._totals = emptyTotals();
    for (const item of this._messages) {
      if (item.kind === 'answer') {
        addAnswer(this._totals, storedDone(item.message));
      }
    }
    this._loaded.emit(detail);
    this._totalsChanged.emit(this._totals);
  }

  private _conversationId: string;
  private _source: IConversationSource | null;
  private _conversation: IConversationDetail | null = null;
  private _messages: ShownMessage[] = [];
  private _totals = emptyTotals();
  /** The number of the load that may land; bumped by anything that supersedes it. */
  private _loadSeq = 0;
  /** The load on its way (its number), 0 when none. */
  private _loading = 0;
  private _turn: ITurnState | null = null;
  private _nextSeq = 0;
  private _early = new Map<number, IChunk>();
  private _queue: string[] = [];
  private _conversationChanged = new Signal<ChatModel, IConversationChange>(
    this
  );
  private _loaded = new Signal<ChatModel, IConversationDetail>(this);
  private _loadFailed = new Signal<ChatModel, LoadFailure>(this);
  private _loadingChanged = new Signal<ChatModel, boolean>(this);
  private _totalsChanged = new Signal<ChatModel, Readonly<IUsageTotals>>(this);
  private _turnChanged = new Signal<ChatModel, Readonly<ITurnState> | null>(
    this
  );
  private _queueChanged = new Signal<ChatModel, readonly string[]>(this);
}
