/**
 * What the client needs to resume its turns after a dropped WebSocket, with no DOM.
 *
 * The server numbers every frame of a turn with `n` (1, 2, ...) and keeps them until the
 * turn is done and a grace period has passed (sessions/replay.py). This tracker keeps,
 * per turn in flight, the last `n` it let through: on a reconnect it says what to send
 * (`resume {id, after}`), and it drops any frame whose `n` it has already seen (frames
 * the server wrote before the drop can still arrive, or be replayed), so the listeners
 * see each frame of a turn exactly once and in order.
 */

import {
  ErrorCode,
  IErrorFrame,
  IResumeFrame,
  PROTOCOL_VERSION,
  ServerFrame
} from './protocol';

// Codes of a client frame refused before its id could be read (protocol.py).
const REFUSALS = new Set<string>([
  ErrorCode.BAD_JSON,
  ErrorCode.FRAME_TOO_LARGE
]);

export class ResumeTracker {
  /** Ids of the turns in flight (sent, not yet done or failed), oldest first. */
  get turns(): string[] {
    return [...this._last.keys()];
  }

  /** Whether any turn is in flight: a drop then means "reconnect and resume". */
  get inFlight(): boolean {
    return this._last.size > 0;
  }

  /** The last frame number let through for `id`; 0 before its first, null if untracked. */
  lastSeen(id: string): number | null {
    return this._last.get(id) ?? null;
  }

  /** A chat frame for turn `id` was sent. */
  begin(id: string): void {
    if (!this._last.has(id)) {
      this._last.set(id, 0);
    }
  }

  /**
   * Whether `frame` (numbered `n`, or null for an unnumbered one) is new: false for a
   * frame of a tracked turn whose `n` was already let through. A turn's done or error
   * frame ends its tracking.
   */
  accept(frame: ServerFrame, n: number | null): boolean {
    // hello and plugins belong to no turn: they never touch a turn's numbering.
    const id = 'id' in frame ? frame.id : null;
    if (frame.type === 'error' && id === null && REFUSALS.has(frame.code)) {
      this.refusedWithoutId();
    }
    if (id === null || !this._last.has(id)) {
      return true;
    }
    if (n !== null) {
      const last = this._last.get(id) ?? 0;
      if (n <= last) {
        return false;
      }
      this._last.set(id, n);
    }
    if (frame.type === 'done' || frame.type === 'error') {
      this._last.delete(id);
    }
    return true;
  }

  /** The frames that continue every turn in flight on a new socket. */
  resumeFrames(): IResumeFrame[] {
    return this.turns.map(id => ({
      type: 'resume',
      v: PROTOCOL_VERSION,
      id,
      after: this._last.get(id) ?? 0
    }));
  }

  /**
   * Gives up on every turn in flight (the connection stayed down too long): one
   * `resume_unavailable` error per turn, as the server would send, so they end the same
   * way. Tracking ends for them.
   */
  abandon(message: string): IErrorFrame[] {
    const frames = this.turns.map((id): IErrorFrame => ({
      type: 'error',
      id,
      code: ErrorCode.RESUME_UNAVAILABLE,
      message
    }));
    this._last.clear();
    return frames;
  }

  /**
   * An error with no id refused a frame the server could not read an id from (too large,
   * not JSON): when that was a chat, its turn never started. The newest turn that has had
   * no frame yet is taken to be it, so a later drop does not try to resume it.
   */
  refusedWithoutId(): void {
    const unanswered = this.turns.filter(id => this._last.get(id) === 0);
    const newest = unanswered[unanswered.length - 1];
    if (newest !== undefined) {
      this._last.delete(newest);
    }
  }

  /** Stop tracking `id` (the user moved on; its frames are passed through unchecked). */
  forget(id: string): void {
    this._last.delete(id);
  }

  private _last = new Map<string, number>();
}
