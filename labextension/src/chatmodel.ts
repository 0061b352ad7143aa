/**
 * The sidebar's state with no DOM: the conversation shown, the turn streaming (its
 * chunk order and stop state), questions queued behind it, and the status line.
 *
 * The view (panel.ts) feeds it frames and connection changes and draws what it says;
 * unit tests (test/chatmodel.test.ts) drive it directly.
 */

import { ISignal, Signal } from '@lumino/signaling';

import type { IConversationDetail, IStoredMessage } from './protocol';

/** A piece of answer text, in the order it is to be shown. */
export interface IChatChunk {
  text: string;
  /** The step the text belongs to; undefined for the answer itself. */
  step?: string;
}

/** The answer currently streaming. */
export interface IChatTurn {
  readonly id: string;
  readonly question: string;
  /** True once the user asked to stop it. */
  stopping: boolean;
  /** True until the first chunk or step arrives (the view shows "Thinking…"). */
  waiting: boolean;
}

/** A question typed while an answer streamed; it goes out when that answer is done. */
export interface IQueuedQuestion {
  readonly id: number;
  readonly text: string;
}

/** What the status line says. */
export interface IStatusLine {
  state: 'connecting' | 'disconnected' | 'ready' | 'no-model';
  text: string;
}

/** The connection facts the status line is made of. */
export interface IConnectionSnapshot {
  state: 'connecting' | 'open' | 'closed';
  resuming: boolean;
  retryDelaySeconds: number;
  model: { configured: boolean; name: string | null } | null;
  /** The model picked in the sidebar, null for the server's default. */
  chosenModel: string | null;
}

/** Where the current conversation's id survives a reload (window.localStorage). */
export interface IIdStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** One thing to draw for a stored conversation, in order. */
export type StoredItem =
  | { kind: 'question'; message: IStoredMessage; stillAnswering: boolean }
  | { kind: 'answer'; message: IStoredMessage };

export namespace ChatModel {
  export interface IOptions {
    /** The key the conversation id is kept under; one per server. */
    storageKey: string;
    storage?: IIdStorage | null;
    /** Makes ids for new conversations (UUIDs in the app). */
    newId: () => string;
  }
}

export class ChatModel {
  constructor(options: ChatModel.IOptions) {
    this._storageKey = options.storageKey;
    this._storage = options.storage ?? null;
    this._newId = options.newId;
    this._conversationId = this._loadId() ?? this._newId();
  }

  /** The conversation new messages go to. */
  get conversationId(): string {
    return this._conversationId;
  }

  /** The answer streaming, or null. */
  get turn(): IChatTurn | null {
    return this._turn;
  }

  get status(): IStatusLine {
    return this._status;
  }

  get queue(): readonly IQueuedQuestion[] {
    return this._queue;
  }

  /** The current conversation changed (new, or switched to another). */
  get conversationChanged(): ISignal<this, string> {
    return this._conversationChanged;
  }

  /** A turn started, stopped being "waiting", began stopping, or ended (null). */
  get turnChanged(): ISignal<this, IChatTurn | null> {
    return this._turnChanged;
  }

  get statusChanged(): ISignal<this, IStatusLine> {
    return this._statusChanged;
  }

  get queueChanged(): ISignal<this, readonly IQueuedQuestion[]> {
    return this._queueChanged;
  }

  // --- conversations ------------------------------------------------------------------

  /** Start a new, empty conversation. */
  newConversation(): string {
    this.setConversation(this._newId());
    return this._conversationId;
  }

  /** Make `id` current; returns false when it already was. */
  setConversation(id: string): boolean {
    // Any load still under way is for the conversation being left.
    this._loadSeq += 1;
    if (id === this._conversationId) {
      return false;
    }
    this._conversationId = id;
    this.saveConversationId();
    this._clearQueue();
    this._conversationChanged.emit(id);
    return true;
  }

  /** Remember the current conversation across reloads (once it has a message). */
  saveConversationId(): void {
    try {
      this._storage?.setItem(this._storageKey, this._conversationId);
    } catch {
      // storage disabled or full: nothing to keep across reloads
    }
  }

  /** A token for a conversation load about to start. */
  beginLoad(): number {
    return ++this._loadSeq;
  }

  /**
   * Whether a load's result may be shown: the user has not moved on, and no turn
   * started here meanwhile (its view would be wiped).
   */
  isCurrentLoad(token: number, id: string): boolean {
    return (
      token === this._loadSeq && id === this._conversationId && !this._turn
    );
  }

  /** Whether a load's failure may still be reported. */
  isLatestLoad(token: number): boolean {
    return token === this._loadSeq;
  }

  /**
   * What to draw for a stored conversation, in the server's order (it sends each
   * question before its answer). A question whose answer is not stored yet and is
   * still pending says it is being answered.
   */
  storedItems(detail: IConversationDetail): StoredItem[] {
    const answered = new Set(
      detail.messages
        .filter(m => m.role === 'assistant' && m.status !== 'pending')
        .map(m => m.turn_id)
    );
    return detail.messages.map(message =>
      message.role === 'user'
        ? {
            kind: 'question',
            message,
            stillAnswering:
              message.status === 'pending' && !answered.has(message.turn_id)
          }
        : { kind: 'answer', message }
    );
  }

  // --- turns --------------------------------------------------------------------------

  startTurn(id: string, question: string): IChatTurn {
    const turn = { id, question, stopping: false, waiting: true };
    this._turn = turn;
    this._nextSeq = 0;
    this._early.clear();
    this._turnChanged.emit(turn);
    return turn;
  }

  /** Whether a frame with this id belongs to the streaming turn. */
  isCurrent(id: string | null): boolean {
    return this._turn !== null && id === this._turn.id;
  }

  /**
   * Accept a chunk numbered `seq`; returns the chunks that can now be shown, in order
   * (none while an earlier one is missing; a repeat of a shown one is dropped).
   */
  acceptChunk(seq: number, chunk: IChatChunk): IChatChunk[] {
    if (!this._turn || seq < this._nextSeq) {
      return [];
    }
    this._early.set(seq, chunk);
    const ready: IChatChunk[] = [];
    let next = this._early.get(this._nextSeq);
    while (next !== undefined) {
      this._early.delete(this._nextSeq);
      ready.push(next);
      this._nextSeq += 1;
      next = this._early.get(this._nextSeq);
    }
    if (ready.length) {
      this._gotSomething();
    }
    return ready;
  }

  /** Something other than text arrived (a step); the turn is no longer waiting. */
  markProgress(): void {
    if (this._turn) {
      this._gotSomething();
    }
  }

  /**
   * Everything held back behind a gap, in seq order: the turn is ending (or a step
   * starts) and what arrived is shown rather than lost.
   */
  flush(): IChatChunk[] {
    const seqs = [...this._early.keys()].sort((a, b) => a - b);
    const out: IChatChunk[] = [];
    for (const seq of seqs) {
      out.push(this._early.get(seq)!);
      this._nextSeq = Math.max(this._nextSeq, seq + 1);
    }
    this._early.clear();
    return out;
  }

  /** The user asked to stop; false when there is nothing to stop or it already is. */
  beginStop(): boolean {
    const turn = this._turn;
    if (!turn || turn.stopping) {
      return false;
    }
    turn.stopping = true;
    this._turnChanged.emit(turn);
    return true;
  }

  /** The turn is over (done, error, dropped, or left). */
  endTurn(id?: string): void {
    if (!this._turn || (id !== undefined && this._turn.id !== id)) {
      return;
    }
    this._turn = null;
    this._early.clear();
    this._turnChanged.emit(null);
  }

  // --- the queue ----------------------------------------------------------------------

  /** Hold a question until the streaming answer is done. */
  enqueue(text: string): IQueuedQuestion {
    const item = { id: ++this._queueSeq, text };
    this._queue = [...this._queue, item];
    this._queueChanged.emit(this._queue);
    return item;
  }

  /** Drop a queued question (the user cancelled it); false when it is gone already. */
  cancelQueued(id: number): boolean {
    const before = this._queue.length;
    this._queue = this._queue.filter(q => q.id !== id);
    if (this._queue.length === before) {
      return false;
    }
    this._queueChanged.emit(this._queue);
    return true;
  }

  /** The next queued question, taken off the queue; null when none or still busy. */
  takeQueued(): IQueuedQuestion | null {
    if (this._turn || !this._queue.length) {
      return null;
    }
    const [first, ...rest] = this._queue;
    this._queue = rest;
    this._queueChanged.emit(this._queue);
    return first;
  }

  // --- the status line ----------------------------------------------------------------

  /** Recompute the status line from the connection; emits when its text changes. */
  updateStatus(connection: IConnectionSnapshot): IStatusLine {
    const status = statusLine(connection);
    if (
      status.state !== this._status.state ||
      status.text !== this._status.text
    ) {
      this._status = status;
      this._statusChanged.emit(status);
    }
    return this._status;
  }

  dispose(): void {
    Signal.clearData(this);
  }

  private _gotSomething(): void {
    const turn = this._turn;
    if (turn?.waiting) {
      turn.waiting = false;
      this._turnChanged.emit(turn);
    }
  }

  private _clearQueue(): void {
    if (this._queue.length) {
      this._queue = [];
      this._queueChanged.emit(this._queue);
    }
  }

  private _loadId(): string | null {
    try {
      return this._storage?.getItem(this._storageKey) ?? null;
    } catch {
      return null; // storage disabled: every reload starts a new conversation
    }
  }

  private _storageKey: string;
  private _storage: IIdStorage | null;
  private _newId: () => string;
  private _conversationId: string;
  private _loadSeq = 0;
  private _turn: IChatTurn | null = null;
  private _nextSeq = 0;
  /** Chunks that arrived ahead of a missing predecessor, by seq. */
  private _early = new Map<number, IChatChunk>();
  private _queue: IQueuedQuestion[] = [];
  private _queueSeq = 0;
  private _status: IStatusLine = { state: 'connecting', text: 'Connecting…' };
  private _conversationChanged = new Signal<this, string>(this);
  private _turnChanged = new Signal<this, IChatTurn | null>(this);
  private _statusChanged = new Signal<this, IStatusLine>(this);
  private _queueChanged = new Signal<this, readonly IQueuedQuestion[]>(this);
}

/** The status line for a connection state. */
export function statusLine(connection: IConnectionSnapshot): IStatusLine {
  switch (connection.state) {
    case 'connecting':
      return {
        state: 'connecting',
        // hook(resume): the answer is not over, it continues once reconnected.
        text: connection.resuming
          ? 'Connection lost. Reconnecting to continue the answer…'
          : 'Connecting…'
      };
    case 'closed':
      return {
        state: 'disconnected',
        text: `Disconnected. Reconnecting in ${connection.retryDelaySeconds} s…`
      };
    case 'open': {
      const model = connection.model;
      if (model?.configured) {
        return {
          state: 'ready',
          text: `Model: ${connection.chosenModel ?? model.name ?? 'configured'}`
        };
      }
      return { state: 'no-model', text: 'No model configured' };
    }
  }
}
