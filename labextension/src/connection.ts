import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  ClientFrame,
  frameNumber,
  IModelInfo,
  PROTOCOL_VERSION,
  ServerFrame,
  serverFrameOf
} from './protocol';
import { ResumeTracker } from './resume';

/**
 * - connecting: a socket is opening or waiting for its hello frame; also after a drop
 *   while answers are in flight (`resuming`): the next socket resumes them, so they are
 *   not over.
 * - open: the server said hello; frames can be sent.
 * - closed: the socket dropped with no answer in flight (or resuming was given up); a
 *   reconnect is scheduled.
 */
export type ConnectionState = 'connecting' | 'open' | 'closed';

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
// Resuming retries sooner and more often: the server keeps a dropped turn's frames only
// for its grace period (resume_grace_seconds, 60 s by default), and an answer that stalls
// for seconds feels broken. Past RESUME_GIVE_UP_MS of trying, the turns are given up.
const RESUME_FIRST_RETRY_MS = 250;
const RESUME_MAX_RETRY_MS = 4_000;
const RESUME_GIVE_UP_MS = 60_000;
// Answers to the agent's approvals (approve, run_result) sent while the socket is down
// wait for the next one: the turn on the server waits for them (bounded by its
// agent_run_timeout). A handful per turn at most; past this many, the oldest go.
const MAX_HELD_REPLIES = 32;
const GAVE_UP_MESSAGE =
  'The connection to the RubberDuck server stayed down too long to continue this ' +
  'answer, so it is incomplete. Your message is saved in the conversation; send it ' +
  'again for a full answer.';

/** The sidebar's WebSocket to /rubberduck/ws, reconnecting with backoff. */
export class DuckConnection implements IDisposable {
  constructor(settings?: ServerConnection.ISettings) {
    this._settings = settings ?? ServerConnection.makeSettings();
  }

  get stateChanged(): ISignal<this, ConnectionState> {
    return this._stateChanged;
  }

  /** Every valid frame, hello included. */
  get frameReceived(): ISignal<this, ServerFrame> {
    return this._frameReceived;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The model the server announced in its last hello. */
  get model(): IModelInfo | null {
    return this._model;
  }

  /** Reconnecting after a drop to continue answers in flight (state 'connecting'). */
  get resuming(): boolean {
    return this._state === 'connecting' && this._tracker.inFlight;
  }

  /** Seconds until the next reconnect attempt while closed. */
  get retryDelaySeconds(): number {
    return Math.ceil(this._retryDelay / 1000);
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Start connecting and resolve once open, or after `timeoutMs` in any case: the caller
   * then finds the state not 'open' and says so, rather than waiting forever.
   */
  whenOpen(timeoutMs: number): Promise<void> {
    this.start();
    if (this._state === 'open') {
      return Promise.resolve();
    }
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer);
        this._stateChanged.disconnect(onState);
        resolve();
      };
      const onState = (_: this, state: ConnectionState): void => {
        if (state === 'open') {
          done();
        }
      };
      const timer = setTimeout(done, timeoutMs);
      this._stateChanged.connect(onState);
    });
  }

  /** Open the socket unless one is already open or opening. */
  start(): void {
    if (this._isDisposed || this._socket) {
      return;
    }
    window.clearTimeout(this._retryTimer);
    this._retryTimer = 0;
    this._setState('connecting');

    let url = URLExt.join(this._settings.wsUrl, 'rubberduck', 'ws');
    if (this._settings.token) {
      // Cookies authenticate too; the token covers setups where they are blocked.
      url += `?token=${encodeURIComponent(this._settings.token)}`;
    }
    const socket = new this._settings.WebSocket(url);
    this._socket = socket;
    socket.onmessage = event => {
      let raw: unknown = undefined;
      try {
        raw =
          typeof event.data === 'string' ? JSON.parse(event.data) : undefined;
      } catch {
        // reported below as malformed
      }
      const frame = serverFrameOf(raw);
      if (!frame) {
        console.warn('RubberDuck: ignoring a malformed frame', event.data);
        return;
      }
      if (!this._tracker.accept(frame, frameNumber(raw))) {
        return; // already seen: it crossed the drop, or the resume replayed it
      }
      if (frame.type === 'hello') {
        this._model = frame.model;
        this._attempt = 0;
        this._droppedAt = 0;
        this._setState('open');
      }
      this._frameReceived.emit(frame);
      if (frame.type === 'hello') {
        this._resumeTurns(socket);
      }
    };
    // onerror is always followed by onclose, which does the bookkeeping.
    socket.onclose = () => {
      if (this._socket === socket) {
        this._socket = null;
        this._scheduleReconnect();
      }
    };
  }

  /** Retry now instead of waiting out the backoff. */
  reconnectNow(): void {
    if (this._state === 'closed') {
      this.start();
    }
  }

  /**
   * Send a frame; false (nothing sent) unless the server has said hello. A chat's turn
   * is resumed if the socket drops before it ends; a cancel of such a turn that cannot
   * be sent now is sent after the resume, and so are an approval's answer and a run's
   * result (approve, run_result).
   */
  send(frame: ClientFrame): boolean {
    const socket = this._socket;
    if (
      this._state !== 'open' ||
      !socket ||
      socket.readyState !== WebSocket.OPEN
    ) {
      if (
        frame.type === 'cancel' &&
        this._tracker.lastSeen(frame.id) !== null
      ) {
        this._pendingCancels.add(frame.id);
      }
      if (frame.type === 'approve' || frame.type === 'run_result') {
        this._heldReplies.push(frame);
        this._heldReplies.splice(
          0,
          this._heldReplies.length - MAX_HELD_REPLIES
        );
      }
      return false;
    }
    socket.send(JSON.stringify(frame));
    if (frame.type === 'chat') {
      this._tracker.begin(frame.id);
    }
    return true;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    window.clearTimeout(this._retryTimer);
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close();
    }
    Signal.clearData(this);
  }

  private _scheduleReconnect(): void {
    if (this._isDisposed) {
      return;
    }
    const resuming = this._tracker.inFlight && !this._gaveUp();
    // Exponential backoff with jitter, so many tabs do not reconnect in lockstep.
    const base = resuming
      ? Math.min(
          RESUME_MAX_RETRY_MS,
          RESUME_FIRST_RETRY_MS * 2 ** this._attempt
        )
      : Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this._attempt);
    this._attempt += 1;
    this._retryDelay = Math.round(base * (0.5 + Math.random() * 0.5));
    this._setState(resuming ? 'connecting' : 'closed');
    this._retryTimer = window.setTimeout(() => this.start(), this._retryDelay);
  }

  /** Whether resuming has been tried for too long; if so, its turns end as incomplete. */
  private _gaveUp(): boolean {
    const now = Date.now();
    if (this._droppedAt === 0) {
      this._droppedAt = now;
      this._attempt = 0;
    }
    if (now - this._droppedAt < RESUME_GIVE_UP_MS) {
      return false;
    }
    this._droppedAt = 0;
    this._pendingCancels.clear();
    this._heldReplies = [];
    for (const frame of this._tracker.abandon(GAVE_UP_MESSAGE)) {
      this._frameReceived.emit(frame);
    }
    return true;
  }

  /** On a new socket's hello: continue every turn in flight, then send held cancels. */
  private _resumeTurns(socket: WebSocket): void {
    if (this._socket !== socket || socket.readyState !== WebSocket.OPEN) {
      return;
    }
    for (const frame of this._tracker.resumeFrames()) {
      socket.send(JSON.stringify(frame));
    }
    for (const id of this._pendingCancels) {
      if (this._tracker.lastSeen(id) !== null) {
        const cancel: ClientFrame = { type: 'cancel', v: PROTOCOL_VERSION, id };
        socket.send(JSON.stringify(cancel));
      }
    }
    this._pendingCancels.clear();
    // After the resumes: the server knows the turns again when these arrive.
    for (const frame of this._heldReplies) {
      socket.send(JSON.stringify(frame));
    }
    this._heldReplies = [];
  }

  private _setState(state: ConnectionState): void {
    if (this._state !== state || state === 'closed') {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _settings: ServerConnection.ISettings;
  private _socket: WebSocket | null = null;
  private _state: ConnectionState = 'connecting';
  private _model: IModelInfo | null = null;
  private _attempt = 0;
  private _retryDelay = 0;
  private _retryTimer = 0;
  private _isDisposed = false;
  private _tracker = new ResumeTracker();
  private _pendingCancels = new Set<string>();
  private _heldReplies: ClientFrame[] = [];
  private _droppedAt = 0; // when resuming began (ms since epoch); 0 when not resuming
  private _stateChanged = new Signal<this, ConnectionState>(this);
  private _frameReceived = new Signal<this, ServerFrame>(this);
}
