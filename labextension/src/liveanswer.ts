/**
 * The answer streaming now, as drawn: its AnswerView, the "Thinking…" line until the
 * model says something, and one re-render per animation frame however many chunks come.
 * The chunks' order is ChatModel's business; this draws what the model hands back.
 */
import { AnswerView } from './answer';
import { finishLine, stoppedLine, usageLine } from './answerfooter';
import { ChatModel, IChunk } from './chatmodel';
import { MessageLog } from './messagelog';
import {
  IChunkFrame,
  IDoneFrame,
  IErrorFrame,
  IHelloFrame,
  IPluginsFrame,
  ITaskFrame,
  ServerFrame
} from './protocol';

/** The frames that build an answer's body (done, error and task are the panel's). */
export type AnswerFrame = Exclude<
  ServerFrame,
  IHelloFrame | IPluginsFrame | ITaskFrame | IDoneFrame | IErrorFrame
>;

/** The engine whose answers are drawn as an agent's (docs/agent.md). */
export const AGENT_ENGINE = 'agent';

export class LiveAnswer {
  readonly answer: AnswerView;

  constructor(
    readonly id: string,
    readonly question: string,
    private readonly _log: MessageLog,
    private readonly _model: ChatModel
  ) {
    this.answer = _log.newAnswer();
    this.answer.setStreaming(true);
    // Inside the answer's own bubble: below an empty one it read as a separate message.
    this._thinking = _log.addThinking(this.answer.node);
  }

  /** Stop asked for, not yet confirmed. */
  stopping = false;

  apply(frame: AnswerFrame): void {
    const answer = this.answer;
    // Route and notices come before the model says anything: still thinking.
    if (
      frame.type === 'chunk' ||
      frame.type === 'step' ||
      frame.type === 'suggestion' ||
      frame.type === 'approval'
    ) {
      this._stopThinking();
    }
    switch (frame.type) {
      case 'route':
        answer.setRoute(frame.engine, frame.reason, frame.forced);
        // The agent's answer reads in order: plan, tool calls, approvals (answer.ts).
        answer.setAgent(frame.engine === AGENT_ENGINE);
        break;
      case 'step':
        // Text that arrived ahead of this frame belongs before it.
        this.flush();
        if (frame.status === 'started') {
          answer.startStep(frame.step, frame.title, frame.tool);
        } else {
          answer.finishStep(frame.step);
        }
        break;
      case 'chunk':
        this._onChunk(frame);
        break;
      case 'citations':
        answer.setCitations(frame.citations);
        this._scheduleRender();
        break;
      case 'correction':
        answer.addCorrection(frame);
        break;
      case 'suggestion':
        answer.addSuggestion(frame.suggestion, { live: true });
        this._log.scrollToEndIfFollowing();
        break;
      case 'notice':
        answer.addNotice(frame);
        break;
    }
  }

  /** Draw everything received, including chunks stranded behind a gap. */
  flush(): void {
    if (this._model.turn?.id === this.id) {
      this._model.flush().forEach(chunk => this._addChunk(chunk));
    }
    this._cancelFrame();
    this._log.renderFollowing(this.answer);
  }

  /** The answer is over: no more caret, thinking line or pending render. */
  end(): void {
    this._stopThinking();
    this._cancelFrame();
    this.answer.setStreaming(false);
  }

  /** The lines a done frame puts under the answer: how it ended early, its usage. */
  showDone(frame: IDoneFrame): void {
    if (frame.finish_reason === 'cancelled') {
      this.answer.appendLine(stoppedLine());
    } else if (frame.finish_reason !== 'stop') {
      this.answer.appendLine(
        finishLine(`(the answer ended early: ${frame.finish_reason})`)
      );
    }
    const usage = usageLine(frame);
    if (usage) {
      this.answer.appendLine(usage);
    }
  }

  /** Stopped with no word from the server (it never confirmed, or could not be told). */
  showStopped(): void {
    this.answer.appendLine(stoppedLine());
  }

  private _onChunk(frame: IChunkFrame): void {
    const ready = this._model.acceptChunk(this.id, frame.seq, {
      text: frame.text,
      step: frame.step
    });
    ready.forEach(chunk => this._addChunk(chunk));
    if (ready.length) {
      this._scheduleRender();
    }
  }

  private _addChunk(chunk: IChunk): void {
    if (chunk.step !== undefined) {
      this.answer.addStepText(chunk.step, chunk.text);
    } else {
      this.answer.addText(chunk.text);
    }
  }

  private _scheduleRender(): void {
    if (!this._frame) {
      // Re-parsing the whole answer per chunk is cheap once per frame, not per chunk.
      this._frame = requestAnimationFrame(() => {
        this._frame = 0;
        this._log.renderFollowing(this.answer);
      });
    }
  }

  private _cancelFrame(): void {
    cancelAnimationFrame(this._frame);
    this._frame = 0;
  }

  private _stopThinking(): void {
    this._thinking?.remove();
    this._thinking = null;
  }

  /** Pending animation frame for a re-render, 0 if none. */
  private _frame = 0;
  private _thinking: HTMLElement | null;
}
