/**
 * The agent's approval requests, without a DOM: which are open, what the user decided,
 * and the frames that answer them (approve, then run_result). The sidebar draws each
 * entry as a card (approvalcard.ts) and runs cells (runner.ts); unit tests drive this
 * directly (labextension/test/agent.test.ts).
 *
 * An entry goes pending → running → done, or pending → denied, or ends `closed` when the
 * server closes it (answered in another tab, timed out, the turn cancelled) or the user
 * stops the turn. An approval frame marked `auto` (allowed for the conversation) or one
 * in a turn the user allowed ("Run all in this turn") runs without asking.
 *
 * A `tool` approval (an MCP server's write/run tool) is answered by the decision alone:
 * allowed, it goes straight to done (the server calls the tool; nothing runs here).
 * "Allow all in this turn" is kept per scope, as the server keeps its grants: cell runs
 * ("run") apart from each MCP server's tools ("tool:<server>").
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  ApprovalDecision,
  ApprovalKind,
  ClientFrame,
  IApprovalFrame,
  PROTOCOL_VERSION
} from '../protocol';
import type { RunResult } from './runresult';

export type ApprovalState =
  'pending' | 'running' | 'done' | 'denied' | 'closed';

export interface IApprovalEntry {
  readonly frame: IApprovalFrame;
  state: ApprovalState;
  /** Why it closed (the server's reason, or "cancelled" on Stop). */
  reason: string | null;
  /** How the run went, once done. */
  result: RunResult | null;
  /** The decision sent, if any (none for an automatic run). */
  decision: ApprovalDecision | null;
}

/** Sends a client frame; false when it could not go (it is held for the reconnect). */
export type SendFrame = (frame: ClientFrame) => boolean;

export class ApprovalsModel {
  constructor(private readonly _send: SendFrame) {}

  /** Emits an entry whenever it is added or its state changes. */
  get changed(): ISignal<ApprovalsModel, IApprovalEntry> {
    return this._changed;
  }

  get(approvalId: string): IApprovalEntry | null {
    return this._entries.get(approvalId) ?? null;
  }

  /** The entries of a turn still waiting for the user, oldest first. */
  pending(turnId: string): IApprovalEntry[] {
    return [...this._entries.values()].filter(
      e => e.frame.id === turnId && e.state === 'pending'
    );
  }

  /**
   * A new approval frame: its entry, and whether to run it now without asking. A repeat
   * of a known approval (a resume replays it) returns the entry as it is, never "run".
   * A tool approval never runs here: allowed already, it is done at once.
   */
  offer(frame: IApprovalFrame): { entry: IApprovalEntry; runNow: boolean } {
    const known = this._entries.get(frame.approval_id);
    if (known) {
      return { entry: known, runNow: false };
    }
    const entry: IApprovalEntry = {
      frame,
      state: 'pending',
      reason: null,
      result: null,
      decision: null
    };
    this._entries.set(frame.approval_id, entry);
    let runNow = false;
    if (frame.auto) {
      // The server already allowed it: it waits for the run_result, not a decision.
      entry.state = 'running';
      runNow = true;
    } else if (this._allowedTurns.has(turnScope(frame))) {
      this._answer(entry, ApprovalDecision.ALLOW);
      entry.state = 'running';
      runNow = true;
    }
    if (runNow && !needsRun(frame)) {
      entry.state = 'done';
      runNow = false;
    }
    this._changed.emit(entry);
    return { entry, runNow };
  }

  /** The user's decision: true when the cell should run now. */
  decide(approvalId: string, decision: ApprovalDecision): boolean {
    const entry = this._entries.get(approvalId);
    if (!entry || entry.state !== 'pending') {
      return false;
    }
    this._answer(entry, decision);
    if (decision === ApprovalDecision.DENY) {
      entry.state = 'denied';
    } else {
      if (decision === ApprovalDecision.ALLOW_TURN) {
        this._allowedTurns.add(turnScope(entry.frame));
      }
      // A tool approval is done once allowed: the server makes the call.
      entry.state = needsRun(entry.frame) ? 'running' : 'done';
    }
    this._changed.emit(entry);
    return entry.state === 'running';
  }

  /** The run (or interrupt) finished: send its result. */
  finish(approvalId: string, result: RunResult): void {
    const entry = this._entries.get(approvalId);
    if (!entry || entry.state !== 'running') {
      return;
    }
    entry.result = result;
    entry.state = 'done';
    this._send({
      type: 'run_result',
      v: PROTOCOL_VERSION,
      id: entry.frame.id,
      approval_id: approvalId,
      ...result
    });
    this._changed.emit(entry);
  }

  /** The server closed it (approval.closed): a pending card clears in every tab. */
  close(approvalId: string, reason: string): void {
    const entry = this._entries.get(approvalId);
    if (!entry) {
      return;
    }
    entry.reason = reason;
    // An answered approval this tab decided keeps what it says (running, done, denied).
    if (entry.state === 'pending') {
      entry.state = 'closed';
      this._changed.emit(entry);
    }
  }

  /** The turn ended or was stopped: what still waits is closed, and forgotten. */
  endTurn(turnId: string, reason = 'cancelled'): void {
    for (const entry of this._entries.values()) {
      if (entry.frame.id !== turnId) {
        continue;
      }
      if (entry.state === 'pending') {
        entry.state = 'closed';
        entry.reason = reason;
        this._changed.emit(entry);
      }
    }
    for (const key of [...this._allowedTurns]) {
      if (key.startsWith(`${turnId}\n`)) {
        this._allowedTurns.delete(key);
      }
    }
  }

  /** Drop every entry (another conversation is shown). */
  clear(): void {
    this._entries.clear();
    this._allowedTurns.clear();
  }

  private _answer(entry: IApprovalEntry, decision: ApprovalDecision): void {
    entry.decision = decision;
    this._send({
      type: 'approve',
      v: PROTOCOL_VERSION,
      id: entry.frame.id,
      approval_id: entry.frame.approval_id,
      decision
    });
  }

  private _entries = new Map<string, IApprovalEntry>();
  /** "<turn id>\n<scope>" the user allowed for the rest of the turn. */
  private _allowedTurns = new Set<string>();
  private _changed = new Signal<ApprovalsModel, IApprovalEntry>(this);
}

/**
 * What a grant covers, as the server scopes it: "run" for cell runs and interrupts,
 * "tool:<server>" for one MCP server's write/run tools.
 */
export function approvalScope(frame: IApprovalFrame): string {
  return frame.kind === ApprovalKind.TOOL
    ? `tool:${frame.tool?.server ?? ''}`
    : 'run';
}

/** Whether this client carries the approval out (runs a cell) and sends a run_result. */
export function needsRun(frame: IApprovalFrame): boolean {
  return frame.kind !== ApprovalKind.TOOL;
}

function turnScope(frame: IApprovalFrame): string {
  return `${frame.id}\n${approvalScope(frame)}`;
}
