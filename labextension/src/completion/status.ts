/**
 * Whether inline completion is on, without any DOM: the server's word
 * (GET /rubberduck/api/complete/status: is a completion model configured?) and the
 * user's switch (the `inlineCompletionEnabled` setting). The status-bar item and the
 * provider follow `changed`.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { ICompletionStatus, parseCompletionStatus } from '../protocol';

/**
 * - checking: the server has not answered yet.
 * - on: the server can complete and the user's switch is on.
 * - off: the user turned it off.
 * - unavailable: the server cannot complete (`reason` says why).
 */
export type CompletionState = 'checking' | 'on' | 'off' | 'unavailable';

/** The status GET; resolves to the body, rejects with a readable Error. */
export type StatusFetcher = () => Promise<unknown>;

export class CompletionStatusModel {
  constructor(fetchStatus: StatusFetcher) {
    this._fetch = fetchStatus;
  }

  get changed(): ISignal<this, CompletionState> {
    return this._changed;
  }

  get server(): ICompletionStatus | null {
    return this._server;
  }

  get userEnabled(): boolean {
    return this._userEnabled;
  }

  set userEnabled(value: boolean) {
    if (value !== this._userEnabled) {
      this._userEnabled = value;
      this._changed.emit(this.state);
    }
  }

  get state(): CompletionState {
    if (!this._server) {
      return this._failure ? 'unavailable' : 'checking';
    }
    if (!this._server.enabled) {
      return 'unavailable';
    }
    return this._userEnabled ? 'on' : 'off';
  }

  /** Whether the provider should ask for completions now. */
  get active(): boolean {
    return this.state === 'on';
  }

  /** One line for the item's tooltip. */
  get title(): string {
    switch (this.state) {
      case 'checking':
        return 'RubberDuck inline completion: asking the server whether it is available';
      case 'on':
        return (
          `RubberDuck inline completion is on (${this._server?.model ?? 'model'}` +
          `${this._server?.fim ? ', fill-in-the-middle' : ''}). Click to turn it off.`
        );
      case 'off':
        return 'RubberDuck inline completion is off. Click to turn it on.';
      case 'unavailable':
        return (
          'RubberDuck inline completion is unavailable: ' +
          (this._server?.reason ??
            this._failure ??
            'the server did not say why')
        );
    }
  }

  async refresh(): Promise<void> {
    try {
      const status = parseCompletionStatus(await this._fetch());
      this._server = status;
      this._failure = status
        ? null
        : 'the server answered something unexpected';
    } catch (error) {
      this._server = null;
      this._failure = (error as Error).message || String(error);
    }
    this._changed.emit(this.state);
  }

  private _fetch: StatusFetcher;
  private _server: ICompletionStatus | null = null;
  private _failure: string | null = null;
  private _userEnabled = true;
  private _changed = new Signal<this, CompletionState>(this);
}
