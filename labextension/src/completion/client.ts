/**
 * The inline completion client, without any DOM: ONE WebSocket to
 * /rubberduck/api/complete/ws (docs/protocol.md, "Inline completion") shared by every
 * editor of the page, and at most one request on it at a time.
 *
 * - A new `complete()` cancels the request before it: the user typed again, so its
 *   answer would be for text that no longer exists. The cancel frame goes at once (the
 *   server closes the upstream request on it); frames still arriving for the old id are
 *   ignored.
 * - `completion.chunk` deltas accumulate into `PendingCompletion.text`;
 *   `completion.done` replaces it with the server's trimmed final text (trimming can
 *   cut what the chunks showed).
 * - `completion.error` rate_limited blocks new requests for its retry_after, quietly
 *   (completions are optional: a toast per keystroke would be worse than none); any
 *   other code is reported through `notice`, at most once a minute per code.
 * - The socket opens on the first request and reconnects with exponential backoff
 *   after a drop while the client is started; a request that the drop cut ends as
 *   'dropped' (a completion is not worth resuming: the next keystroke asks again).
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  CompletionClientFrame,
  completionFrameOf,
  ErrorCode,
  ICompletionCell,
  ICompletionVariable,
  PROTOCOL_VERSION
} from '../protocol';

/** The part of a browser WebSocket the client uses, so tests can hand in a fake. */
export interface ISocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
}

export type SocketFactory = (url: string) => ISocketLike;

/** Time, injectable so tests step it themselves. */
export interface IClock {
  now(): number;
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realClock: IClock = {
  now: () => Date.now(),
  set: (callback, ms) => setTimeout(callback, ms),
  clear: handle => clearTimeout(handle as ReturnType<typeof setTimeout>)
};

const SOCKET_OPEN = 1;

// Backoff as the chat socket's (connection.ts): 1 s doubling to 30 s, with jitter so
// many tabs do not reconnect in lockstep after a server restart.
export const FIRST_RETRY_MS = 1_000;
export const MAX_RETRY_MS = 30_000;
// A request made while the socket opens waits this long for it; past that a ghost
// text would come too late to be useful, and the next keystroke asks again.
export const OPEN_WAIT_MS = 3_000;
// rate_limited without a retry_after: pause this long.
export const DEFAULT_BACKOFF_MS = 5_000;
// One notice per error code per minute: a broken provider must not toast every key.
export const NOTICE_INTERVAL_MS = 60_000;

/** What one completion is about; the client adds the id and the frame type. */
export interface ICompletionQuery {
  path: string;
  language: string;
  prefix: string;
  suffix: string;
  cells: ICompletionCell[];
  variables: ICompletionVariable[];
  multiline: boolean;
  maxLines: number;
}

/**
 * - waiting: sent (or waiting for the socket), nothing back yet.
 * - streaming: chunks are arriving; `text` is their sum so far.
 * - done: the server's final text is in `text` (may be empty).
 * - ended: cancelled, rate limited, failed or dropped; `endReason` says which.
 */
export type PendingState = 'waiting' | 'streaming' | 'done' | 'ended';
export type EndReason = 'cancelled' | 'rate_limited' | 'error' | 'dropped';

/** One request's answer as it arrives. */
export class PendingCompletion {
  constructor(
    readonly id: string,
    readonly query: ICompletionQuery
  ) {}

  get state(): PendingState {
    return this._state;
  }

  /** The text to show now: the chunks so far, then the final text. */
  get text(): string {
    return this._text;
  }

  get cached(): boolean {
    return this._cached;
  }

  get endReason(): EndReason | null {
    return this._endReason;
  }

  get finished(): boolean {
    return this._state === 'done' || this._state === 'ended';
  }

  /** Resolves at the next change of state or text (at once when finished). */
  changed(): Promise<void> {
    if (this.finished) {
      return Promise.resolve();
    }
    return new Promise(resolve => this._waiters.push(resolve));
  }

  /** The text after each change, until the request is done or ended. */
  async *updates(): AsyncGenerator<string> {
    let shown: string | null = null;
    for (;;) {
      if (this._text !== shown || this.finished) {
        shown = this._text;
        yield shown;
      }
      if (this.finished) {
        return;
      }
      await this.changed();
    }
  }

  /** @internal the client's */
  _chunk(delta: string): void {
    if (this.finished) {
      return;
    }
    this._text += delta;
    this._state = 'streaming';
    this._wake();
  }

  /** @internal */
  _done(text: string, cached: boolean): void {
    if (this.finished) {
      return;
    }
    this._text = text;
    this._cached = cached;
    this._state = 'done';
    this._wake();
  }

  /** @internal */
  _end(reason: EndReason): void {
    if (this.finished) {
      return;
    }
    this._text = '';
    this._endReason = reason;
    this._state = 'ended';
    this._wake();
  }

  private _wake(): void {
    const waiters = this._waiters;
    this._waiters = [];
    for (const resolve of waiters) {
      resolve();
    }
  }

  private _state: PendingState = 'waiting';
  private _text = '';
  private _cached = false;
  private _endReason: EndReason | null = null;
  private _waiters: (() => void)[] = [];
}

export interface ICompletionNotice {
  code: string;
  message: string;
}

export type ClientState = 'idle' | 'connecting' | 'open' | 'closed';

export interface ICompletionClientOptions {
  /** The socket's URL (token included), asked at each connect. */
  url: () => string;
  createSocket: SocketFactory;
  clock?: IClock;
}

export class CompletionClient implements IDisposable {
  constructor(options: ICompletionClientOptions) {
    this._url = options.url;
    this._createSocket = options.createSocket;
    this._clock = options.clock ?? realClock;
  }

  /**
   * - idle: never connected, or stopped.
   * - connecting: a socket is opening.
   * - open: frames can be sent.
   * - closed: the socket dropped; a reconnect is scheduled.
   */
  get state(): ClientState {
    return this._state;
  }

  get stateChanged(): ISignal<this, ClientState> {
    return this._stateChanged;
  }

  /** An error worth one line to the user (never rate_limited). */
  get notice(): ISignal<this, ICompletionNotice> {
    return this._notice;
  }

  /** The request in flight, if any. */
  get current(): PendingCompletion | null {
    return this._current;
  }

  /** Until when (clock ms) requests are paused by rate_limited; 0 when they are not. */
  get blockedUntil(): number {
    return this._blockedUntil > this._clock.now() ? this._blockedUntil : 0;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Ask for a completion; the request before it, if still running, is cancelled. */
  complete(query: ICompletionQuery): PendingCompletion {
    this.cancelCurrent();
    this._sequence += 1;
    const pending = new PendingCompletion(
      `c${this._sequence}-${this._page}`,
      query
    );
    if (this._isDisposed) {
      pending._end('dropped');
      return pending;
    }
    if (this.blockedUntil) {
      pending._end('rate_limited');
      return pending;
    }
    this._current = pending;
    this._started = true;
    if (this._state === 'open') {
      this._sendRequest(pending);
    } else {
      // Sent by onopen; given up after OPEN_WAIT_MS.
      this._connect();
      this._clock.clear(this._openWait);
      this._openWait = this._clock.set(() => {
        if (this._current === pending && pending.state === 'waiting') {
          this._current = null;
          pending._end('dropped');
        }
      }, OPEN_WAIT_MS);
    }
    return pending;
  }

  /** The user typed again (or left the editor): stop the request in flight now. */
  cancelCurrent(): void {
    const pending = this._current;
    if (!pending) {
      return;
    }
    this._current = null;
    if (!pending.finished) {
      if (this._sent.has(pending.id)) {
        this._send({ type: 'cancel', v: PROTOCOL_VERSION, id: pending.id });
      }
      pending._end('cancelled');
    }
    this._sent.delete(pending.id);
  }

  /** Close the socket and stop reconnecting (completion turned off); complete() reopens. */
  stop(): void {
    this.cancelCurrent();
    this._started = false;
    this._clock.clear(this._retryTimer);
    this._retryTimer = null;
    this._closeSocket();
    this._setState('idle');
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this.stop();
    this._isDisposed = true;
    Signal.clearData(this);
  }

  private _connect(): void {
    if (this._socket || this._retryTimer !== null || this._isDisposed) {
      return; // open, opening, or a reconnect already scheduled
    }
    const wait = this._retryAt - this._clock.now();
    if (wait > 0) {
      // Still in the backoff after a drop: connect when it is over.
      this._retryTimer = this._clock.set(() => {
        this._retryTimer = null;
        this._connect();
      }, wait);
      return;
    }
    this._setState('connecting');
    let socket: ISocketLike;
    try {
      socket = this._createSocket(this._url());
    } catch {
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      if (this._socket !== socket) {
        return;
      }
      this._attempt = 0;
      this._setState('open');
      const pending = this._current;
      if (
        pending &&
        pending.state === 'waiting' &&
        !this._sent.has(pending.id)
      ) {
        this._clock.clear(this._openWait);
        this._sendRequest(pending);
      }
    };
    socket.onmessage = event => this._onMessage(event.data);
    socket.onclose = () => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      this._sent.clear();
      const pending = this._current;
      if (pending) {
        // Waiting for the socket to open is bounded by its own timer.
        if (pending.state !== 'waiting' || this._state === 'open') {
          this._current = null;
          pending._end('dropped');
        }
      }
      this._scheduleReconnect();
    };
  }

  /**
   * After a drop: the next connect waits out an exponential backoff. Only a request
   * waiting for the socket reconnects at once; an idle page reconnects at its next
   * request, so a server without the endpoint costs nothing while nobody types.
   */
  private _scheduleReconnect(): void {
    if (!this._started || this._isDisposed) {
      this._setState('idle');
      return;
    }
    const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this._attempt);
    this._attempt += 1;
    this._retryAt =
      this._clock.now() + Math.round(base * (0.5 + Math.random() * 0.5));
    this._setState('closed');
    if (this._current?.state === 'waiting') {
      this._connect();
    }
  }

  private _sendRequest(pending: PendingCompletion): void {
    const q = pending.query;
    const sent = this._send({
      type: 'complete',
      v: PROTOCOL_VERSION,
      id: pending.id,
      path: q.path,
      language: q.language,
      prefix: q.prefix,
      suffix: q.suffix,
      cells: q.cells,
      variables: q.variables,
      multiline: q.multiline,
      max_lines: q.maxLines
    });
    if (sent) {
      this._sent.add(pending.id);
    } else {
      this._current = null;
      pending._end('dropped');
    }
  }

  private _send(frame: CompletionClientFrame): boolean {
    const socket = this._socket;
    if (!socket || socket.readyState !== SOCKET_OPEN) {
      return false;
    }
    socket.send(JSON.stringify(frame));
    return true;
  }

  private _onMessage(data: unknown): void {
    let raw: unknown = undefined;
    try {
      raw = typeof data === 'string' ? JSON.parse(data) : undefined;
    } catch {
      // malformed: ignored below
    }
    const frame = completionFrameOf(raw);
    if (!frame) {
      return;
    }
    const pending = this._current;
    // An error with no id is about the last frame sent: one request runs at a time.
    const ours =
      frame.id === pending?.id ||
      (frame.id === '' && frame.type === 'completion.error');
    if (!pending || !ours) {
      return; // a cancelled request's late frames
    }
    switch (frame.type) {
      case 'completion.chunk':
        pending._chunk(frame.text);
        return;
      case 'completion.done':
        this._finish(pending);
        pending._done(frame.text, frame.cached);
        return;
      case 'completion.cancelled':
        this._finish(pending);
        pending._end('cancelled');
        return;
      case 'completion.error':
        this._finish(pending);
        if (frame.code === ErrorCode.RATE_LIMITED) {
          const ms =
            frame.retry_after !== null
              ? frame.retry_after * 1000
              : DEFAULT_BACKOFF_MS;
          this._blockedUntil = this._clock.now() + ms;
          pending._end('rate_limited');
          return;
        }
        pending._end('error');
        this._report(frame.code, frame.message);
        return;
    }
  }

  private _finish(pending: PendingCompletion): void {
    this._current = null;
    this._sent.delete(pending.id);
  }

  private _report(code: string, message: string): void {
    const now = this._clock.now();
    const last = this._noticedAt.get(code);
    if (last !== undefined && now - last < NOTICE_INTERVAL_MS) {
      return;
    }
    this._noticedAt.set(code, now);
    this._notice.emit({
      code,
      message: message || 'An inline completion failed.'
    });
  }

  private _closeSocket(): void {
    const socket = this._socket;
    this._socket = null;
    this._sent.clear();
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      socket.close();
    }
  }

  private _setState(state: ClientState): void {
    if (this._state !== state) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _url: () => string;
  private _createSocket: SocketFactory;
  private _clock: IClock;
  private _socket: ISocketLike | null = null;
  private _state: ClientState = 'idle';
  private _started = false;
  private _current: PendingCompletion | null = null;
  private _sent = new Set<string>();
  private _sequence = 0;
  // Ids are unique per request on a page; the random part keeps two tabs' ids apart
  // in the server's logs.
  private _page = Math.random().toString(36).slice(2, 8);
  private _attempt = 0;
  private _retryTimer: unknown = null;
  private _retryAt = 0;
  private _openWait: unknown = null;
  private _blockedUntil = 0;
  private _noticedAt = new Map<string, number>();
  private _isDisposed = false;
  private _stateChanged = new Signal<this, ClientState>(this);
  private _notice = new Signal<this, ICompletionNotice>(this);
}
