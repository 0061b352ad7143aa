/**
 * The conversation log: the user's messages, the answers (AnswerView), notices, the
 * "Thinking…" line, and a stored conversation drawn from what ChatModel loaded. It only
 * draws; what to draw and in which order comes from the model and the panel.
 */
import { AnswerView, IAnswerServices } from './answer';
import { errorLine, finishLine, stoppedLine, usageLine } from './answerfooter';
import { ShownMessage, storedDone } from './chatmodel';
import { element } from './dom';
import type { NoticeLevel } from './plugins';
import { ISuggestion } from './protocol';

// The engine whose stored answers are drawn in order (liveanswer.ts's AGENT_ENGINE).
const AGENT_ENGINE = 'agent';

// Within this many pixels of the bottom the log follows new text; further up, the user
// is reading something and the log stays put.
const FOLLOW_SLACK_PX = 40;

/** How MessageLog.addNotice shows a notice beyond its code and text. */
export interface INoticeOptions {
  /** Seconds until a retry may succeed (already said in the text). */
  retryAfter?: number;
  level?: 'error' | NoticeLevel;
  /** Scroll to it only if the log was at its end. */
  follow?: boolean;
}

export class MessageLog {
  readonly node: HTMLDivElement;

  /** `emptyChanged` runs whenever messages come or go, whatever added or removed them. */
  constructor(
    private readonly _services: IAnswerServices,
    emptyChanged: () => void
  ) {
    const node = element('div', 'jp-RubberDuck-messages');
    node.setAttribute('role', 'log');
    node.setAttribute('aria-live', 'polite');
    node.setAttribute('aria-label', 'RubberDuck conversation');
    new MutationObserver(emptyChanged).observe(node, { childList: true });
    this.node = node;
  }

  get isEmpty(): boolean {
    return this.node.childElementCount === 0;
  }

  /** Announce that a conversation is loading (or no longer). */
  setBusy(busy: boolean): void {
    this.node.setAttribute('aria-busy', String(busy));
  }

  clear(): void {
    this.node.replaceChildren();
    this._answers = [];
  }

  addUserMessage(text: string): void {
    // The user's own text is shown verbatim, never parsed as HTML.
    this._addMessage('user').append(element('div', 'jp-RubberDuck-text', text));
  }

  /**
   * A notice: the server's error frames and the panel's own (not sent, could not
   * load...), as Markdown through the answers' sanitizer. The same notice twice in a row
   * is shown once. `level` colours it (an error unless said otherwise); a notice that
   * comes on its own (a plugin changed) passes `follow` so that it scrolls the log only
   * if the user was at its end, never away from what they are reading.
   */
  addNotice(code: string, message: string, options: INoticeOptions = {}): void {
    const last = this.node.lastElementChild;
    const error = last?.querySelector('.jp-RubberDuck-error');
    if (
      error?.getAttribute('data-code') === code &&
      this._noticeText.get(error) === message
    ) {
      return;
    }
    const notice = errorLine(code, message);
    notice.dataset.level = options.level ?? 'error';
    this._noticeText.set(notice, message);
    if (options.retryAfter !== undefined) {
      // The message already says when; this is for styling and tests.
      notice.dataset.retryAfter = String(options.retryAfter);
    }
    this._addMessage('notice', options.follow ?? false).append(notice);
  }

  /** A new, empty answer at the end of the log. */
  newAnswer(): AnswerView {
    const answer = new AnswerView(this._services);
    this._answers.push(answer);
    this.node.append(answer.node);
    return answer;
  }

  /** Take an answer out again (one that ended with nothing to show). */
  removeAnswer(answer: AnswerView): void {
    answer.node.remove();
    this._answers = this._answers.filter(a => a !== answer);
  }

  /** "Thinking…" at the end of `into` (the log by default), until the caller removes it. */
  addThinking(into: HTMLElement = this.node): HTMLElement {
    const thinking = element('div', 'jp-RubberDuck-thinking', 'Thinking…');
    thinking.setAttribute('role', 'status');
    thinking.setAttribute('aria-live', 'polite');
    into.append(thinking);
    this.scrollToEnd();
    return thinking;
  }

  /** Engine titles come with the hello frame, maybe after answers were drawn. */
  refreshEngineTitles(): void {
    this._answers.forEach(answer => answer.refreshEngineTitle());
  }

  /** Replace the log with a stored conversation's messages, in the order given. */
  drawConversation(
    messages: readonly ShownMessage[],
    suggestions: readonly ISuggestion[]
  ): void {
    this.clear();
    const byId = new Map(suggestions.map(s => [s.id, s]));
    for (const item of messages) {
      switch (item.kind) {
        case 'question':
          this.addUserMessage(item.message.content);
          if (item.waiting) {
            this._addMessage('notice').append(
              finishLine(
                '(still being answered: reopen the conversation to see the answer)'
              )
            );
          }
          break;
        case 'refusal':
          this.addNotice(item.code, item.text);
          break;
        case 'answer':
          this._addStoredAnswer(item, byId);
          break;
      }
    }
    this.scrollToEnd();
  }

  /** Draw `answer` again, keeping the log at its end if the user was following it. */
  renderFollowing(answer: AnswerView): void {
    const follow = this.isAtEnd();
    answer.render();
    if (follow) {
      this.scrollToEnd();
    }
  }

  isAtEnd(): boolean {
    const log = this.node;
    return (
      log.scrollHeight - log.scrollTop - log.clientHeight < FOLLOW_SLACK_PX
    );
  }

  scrollToEnd(): void {
    this.node.scrollTop = this.node.scrollHeight;
  }

  scrollToEndIfFollowing(): void {
    if (this.isAtEnd()) {
      this.scrollToEnd();
    }
  }

  /** A new message at the end; the log scrolls to it (if `follow`, only when at the end). */
  private _addMessage(role: 'user' | 'notice', follow = false): HTMLElement {
    const scroll = !follow || this.isAtEnd();
    const node = element('div', 'jp-RubberDuck-message');
    node.dataset.role = role;
    this.node.append(node);
    if (scroll) {
      this.scrollToEnd();
    }
    return node;
  }

  private _addStoredAnswer(
    item: Extract<ShownMessage, { kind: 'answer' }>,
    suggestions: Map<string, ISuggestion>
  ): void {
    const message = item.message;
    const meta = message.meta;
    const answer = this.newAnswer();
    if (meta.route) {
      answer.setRoute(meta.route.engine, meta.route.reason, meta.route.forced);
    }
    meta.notices.forEach(notice => answer.addNotice(notice));
    // An agent's answer reads in order as it did live: each step where it came in the
    // text (answer_at), the text before it as the plan.
    const inOrder =
      item.showText &&
      meta.route?.engine === AGENT_ENGINE &&
      meta.steps.length > 0 &&
      meta.steps.every(step => step.answer_at !== null);
    answer.setAgent(inOrder, false);
    let shown = 0;
    for (const step of meta.steps) {
      if (inOrder) {
        const at = Math.max(shown, step.answer_at ?? 0);
        answer.addText(message.content.slice(shown, at));
        shown = at;
      }
      answer.startStep(step.step, step.title);
      answer.addStepText(step.step, step.text);
      answer.finishStep(step.step);
    }
    if (item.showText) {
      answer.addText(message.content.slice(shown));
    }
    meta.corrections.forEach(c => answer.addCorrection(c));
    answer.setCitations(meta.citations);
    for (const id of meta.suggestions) {
      const suggestion = suggestions.get(id);
      if (suggestion) {
        answer.addSuggestion(suggestion);
      }
    }
    answer.render();
    if (item.ending === 'stopped') {
      answer.appendLine(stoppedLine());
    } else if (item.ending === 'failed' && meta.error) {
      answer.appendLine(errorLine(meta.error.code, meta.error.message));
    } else if (item.ending === 'cut-off') {
      answer.appendLine(finishLine('(the answer was cut off)'));
    }
    const usage = usageLine(storedDone(message));
    if (usage) {
      answer.appendLine(usage);
    }
  }

  private _answers: AnswerView[] = [];
  /** Each notice's text as sent: its rendered text has lost the Markdown. */
  private _noticeText = new WeakMap<Element, string>();
}
