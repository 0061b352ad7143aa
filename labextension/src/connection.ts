import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  ClientFrame,
  IModelInfo,
  parseServerFrame,
  ServerFrame
} from './protocol';

/**
 * - connecting: a socket is opening or waiting for its hello frame.
 * - open: the server said hello; frames can be sent.
 * - closed: the socket dropped; a reconnect is scheduled.
 */
export type ConnectionState = 'connecting' | 'open' | 'closed';

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

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

  /** Seconds until the next reconnect attempt while closed. */
  get retryDelaySeconds(): number {
    return Math.ceil(this._retryDelay / 1000);
  }

  get isDisposed(): boolean {
    return this._isDisposed;
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
      const frame = parseServerFrame(event.data);
      if (!frame) {
        console.warn('RubberDuck: ignoring a malformed frame', event.data);
        return;
      }
      if (frame.type === 'hello') {
        this._model = frame.model;
        this._attempt = 0;
        this._setState('open');
      }
      this._frameReceived.emit(frame);
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

  /** Send a frame; false (nothing sent) unless the server has said hello. */
  send(frame: ClientFrame): boolean {
    const socket = this._socket;
    if (
      this._state !== 'open' ||
      !socket ||
      socket.readyState !== WebSocket.OPEN
    ) {
      return false;
    }
    socket.send(JSON.stringify(frame));
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
    // Exponential backoff with jitter, so many tabs do not reconnect in lockstep.
    const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** this._attempt);
    this._attempt += 1;
    this._retryDelay = Math.round(base * (0.5 + Math.random() * 0.5));
    this._setState('closed');
    this._retryTimer = window.setTimeout(() => this.start(), this._retryDelay);
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
  private _stateChanged = new Signal<this, ConnectionState>(this);
  private _frameReceived = new Signal<this, ServerFrame>(this);
}
