/**
 * The chat's state without a DOM: the current conversation, the answer streaming (its
 * chunks put back in order), the messages queued behind it and the status line. The
 * panel draws what this says and listens to its signals; unit tests drive it directly.
 */
import { ISignal, Signal } from '@lumino/signaling';

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

export class ChatModel {
  constructor(conversationId: string) {
    this._conversationId = conversationId;
  }

  get conversationId(): string {
    return this._conversationId;
  }

  /** The answer streaming now, null between answers. */
  get turn(): Readonly<ITurnState> | null {
    return this._turn;
  }

  /** Messages typed while an answer streamed, oldest first. */
  get queue(): readonly string[] {
    return this._queue;
  }

  /** Emits the new conversation's id when the chat moves to another conversation. */
  get conversationChanged(): ISignal<ChatModel, string> {
    return this._conversationChanged;
  }

  /** Emits when an answer starts (the turn) or ends (null). */
  get turnChanged(): ISignal<ChatModel, Readonly<ITurnState> | null> {
    return this._turnChanged;
  }

  get queueChanged(): ISignal<ChatModel, readonly string[]> {
    return this._queueChanged;
  }

  /**
   * Move to another conversation: the answer streaming stops being followed (it goes on
   * being saved on the server) and the queue, which was meant for this one, is dropped.
   * Returns the turn left behind, for the caller to cancel.
   */
  switchTo(id: string): Readonly<ITurnState> | null {
    const left = this._turn;
    this.endTurn();
    this.clearQueue();
    if (id !== this._conversationId) {
      this._conversationId = id;
      this._conversationChanged.emit(id);
    }
    return left;
  }

  startTurn(id: string, question: string): Readonly<ITurnState> {
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

  private _conversationId: string;
  private _turn: ITurnState | null = null;
  private _nextSeq = 0;
  private _early = new Map<number, IChunk>();
  private _queue: string[] = [];
  private _conversationChanged = new Signal<ChatModel, string>(this);
  private _turnChanged = new Signal<ChatModel, Readonly<ITurnState> | null>(
    this
  );
  private _queueChanged = new Signal<ChatModel, readonly string[]>(this);
}
