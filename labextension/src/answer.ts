/**
 * One assistant answer: the engine's badge, notices, reasoning steps, the answer text,
 * self-correction rounds, sources and suggestions. Built live from a turn's frames or
 * at once from a stored message; the same DOM either way.
 *
 * An agent's answer, live, reads in order: the text the model wrote before a round of
 * tool calls (its plan) stands above those calls' steps, approval cards follow the step
 * that asked, and the review's findings on a proposed edit are shown on its card.
 */
import { linkCitations, OpenCitation, renderSources } from './citations';
import { enhanceCodeBlocks, ICodeBlockServices } from './codeblock';
import { button, element } from './dom';
import { renderAnswerMarkdown, renderMarkdownInto } from './markdown';
import { prettyArguments, stepResultText } from './agent/steps';
import {
  ICitation,
  ICorrection,
  INotice,
  IStepTool,
  ISuggestion,
  NoticeCode
} from './protocol';
import { renderNoticeAction } from './indexstatus/notice';
import { ISuggestionActions, SuggestionView } from './suggestion';

export interface IAnswerServices {
  /** The engine's title from the hello frame, or a readable form of its name. */
  engineTitle(engine: string): string;
  openCitation: OpenCitation;
  suggestions: ISuggestionActions;
  /** The notebooks and highlighter code blocks act on; without it, Copy works alone. */
  codeBlocks?: ICodeBlockServices;
}

const NO_LAB: ICodeBlockServices = { notebooks: null, languages: null };

// Notices about a suggestion (not offered: it does not parse, or it would write a
// redacted secret) stand where the suggestion would have: under the answer.
const SUGGESTION_NOTICES = new Set<string>([
  NoticeCode.SUGGESTION_UNPARSABLE,
  NoticeCode.SUGGESTION_WITHHELD
]);

interface IStepView {
  node: HTMLDetailsElement;
  state: HTMLElement;
  body: HTMLElement;
  text: string;
  dirty: boolean;
  /** An agent's tool call: its arguments are shown apart, the text is its result. */
  tool: IStepTool | null;
  /** Drawn as text (an agent's step), not as Markdown. */
  plain: boolean;
}

/** How AnswerView.addSuggestion treats a suggestion that arrives while the answer streams. */
export interface ISuggestionArrival {
  /** Live in this page (not drawn from a stored conversation): auto-apply may act. */
  live?: boolean;
}

export class AnswerView {
  /** The message element; the panel puts it in the log. */
  readonly node: HTMLElement;

  constructor(private readonly _services: IAnswerServices) {
    const node = element('div', 'jp-RubberDuck-message');
    node.dataset.role = 'assistant';
    this._head = element('div', 'jp-RubberDuck-answer-head');
    this._head.hidden = true;
    this._notices = element('div', 'jp-RubberDuck-notices');
    this._steps = element('div', 'jp-RubberDuck-steps');
    this._markdown = element('div', 'jp-RubberDuck-markdown');
    this._corrections = element('div', 'jp-RubberDuck-corrections');
    this._sources = element('div', 'jp-RubberDuck-sources-slot');
    this._suggestions = element('div', 'jp-RubberDuck-suggestions');
    node.append(
      this._head,
      this._notices,
      this._steps,
      this._markdown,
      this._corrections,
      this._sources,
      this._suggestions
    );
    this.node = node;
  }

  /** The answer text so far (Markdown). */
  get text(): string {
    return this._text;
  }

  /** True once anything besides the badge is shown. */
  get hasContent(): boolean {
    return (
      this._text !== '' ||
      this._stepViews.size > 0 ||
      this._citations.length > 0 ||
      this._suggestions.childElementCount > 0 ||
      this._notices.childElementCount > 0
    );
  }

  setRoute(engine: string, reason: string, forced: boolean): void {
    const badge = element(
      'span',
      'jp-RubberDuck-engine',
      this._services.engineTitle(engine)
    );
    badge.dataset.engine = engine;
    badge.dataset.forced = String(forced);
    const why = reason ? `Why: ${reason}` : '';
    badge.title = `Answered by the ${engine} engine${why ? `. ${why}` : ''}`;
    badge.setAttribute('aria-label', `Engine: ${badge.textContent}. ${why}`);
    this._head.replaceChildren(badge);
    this._head.hidden = false;
  }

  /** Re-read engine titles, for answers drawn before the hello frame arrived. */
  refreshEngineTitle(): void {
    const badge = this._head.querySelector<HTMLElement>(
      '.jp-RubberDuck-engine'
    );
    const engine = badge?.dataset.engine;
    if (badge && engine) {
      badge.textContent = this._services.engineTitle(engine);
    }
  }

  addNotice(notice: INotice): void {
    // Notices are Markdown (`commands`, code blocks), through the same sanitizer.
    // Not the answer's own markdown class: the streaming caret and anything that looks for
    // the answer's text must not take a notice for it; the CSS styles both alike.
    const banner = element(
      'div',
      'jp-RubberDuck-info jp-RubberDuck-notice-text'
    );
    renderMarkdownInto(banner, notice.message);
    banner.dataset.code = notice.code;
    banner.setAttribute('role', 'note');
    // Code in a notice is shown as text: it can be copied, never applied.
    enhanceCodeBlocks(banner, this._codeBlocks, { actions: 'copy' });
    renderNoticeAction(banner, notice); // hook(indexstatus): the notice's action button
    if (SUGGESTION_NOTICES.has(notice.code)) {
      this._suggestions.append(banner);
    } else {
      this._notices.append(banner);
    }
  }

  /**
   * Answer as an agent does: text before a round of tool calls becomes a plan block in
   * order with the steps, and the steps' text (tool results: code, listings) shows as
   * text, never as Markdown. `live`: the review's rounds go on the card of the edit
   * offered in the same step (the frames' order says which), not under the answer.
   */
  setAgent(agent: boolean, live = true): void {
    this._agent = agent;
    this._reviewOnCards = agent && live;
    this.node.dataset.agent = String(agent);
  }

  startStep(step: string, title: string, tool?: IStepTool): void {
    if (this._agent && !this._stepViews.has(step)) {
      this._cutPlan();
      // Rounds of an earlier step were about an edit never offered (its step says so).
      this._reviewRounds = [];
    }
    const view = this._step(step, title, tool ?? null);
    view.node.dataset.status = 'started';
    view.node.open = true;
    view.state.textContent = view.tool ? 'running…' : 'thinking…';
    this.node.dataset.thinking = 'true';
  }

  /** An approval card, in order after the step that asked for it (which now waits). */
  addApproval(node: HTMLElement): void {
    const asking = [...this._stepViews.values()]
      .reverse()
      .find(v => v.tool && v.node.dataset.status === 'started');
    if (asking) {
      asking.state.textContent = 'waiting for your approval…';
    }
    this._steps.append(node);
  }

  /** The card of suggestion `id` in this answer, if it is here. */
  suggestionView(id: string): SuggestionView | null {
    return this._suggestionViews.get(id) ?? null;
  }

  addStepText(step: string, text: string): void {
    const view = this._step(step, step);
    view.text += text;
    view.dirty = true;
  }

  finishStep(step: string): void {
    const view = this._stepViews.get(step);
    if (!view) {
      return;
    }
    view.node.dataset.status = 'finished';
    view.state.textContent = '';
    view.node.open = false;
    delete this.node.dataset.thinking;
  }

  addText(text: string): void {
    this._text += text;
    this._textDirty = true;
  }

  setCitations(citations: ICitation[]): void {
    this._citations = citations;
    // The list is drawn by render(): which sources are cited depends on the text.
    this._textDirty = true;
  }

  addCorrection(correction: ICorrection): void {
    if (this._reviewOnCards) {
      // The agent's review gate checks an edit before it is offered: the rounds of a
      // step are about the suggestion that step offers.
      this._reviewRounds.push(correction);
      return;
    }
    // Numbered by arrival: the server counts its first check as round 0.
    const shown = this._corrections.childElementCount + 1;
    this._corrections.append(renderCorrection(correction, shown));
  }

  addSuggestion(
    suggestion: ISuggestion,
    arrival: ISuggestionArrival = {}
  ): void {
    // Stored answers keep their rounds apart (under the text): which edit each was
    // about is known only live, from the order of the frames.
    const rounds = this._reviewOnCards ? this._reviewRounds : [];
    this._reviewRounds = [];
    const view = new SuggestionView(suggestion, this._services.suggestions, {
      findings: renderReviewRounds(rounds)
    });
    this._suggestionViews.set(suggestion.id, view);
    this._suggestions.append(view.node);
    if (
      arrival.live &&
      suggestion.status === 'proposed' &&
      (suggestion.auto_apply === true || this._approveAll)
    ) {
      void view.apply(true).then(() => this._updateApproveAll());
    }
    view.node.addEventListener('click', () =>
      // After Apply or Reject settles, the count on "Approve all" follows.
      window.setTimeout(() => this._updateApproveAll(), 0)
    );
    this._updateApproveAll();
  }

  /**
   * Apply every pending suggestion of the answer, in order, and (while it streams) each
   * one still to come; each keeps an Undo. Stops at the first that does not apply.
   */
  async approveAll(): Promise<void> {
    this._approveAll = this._streaming;
    for (const view of this._suggestionViews.values()) {
      if (view.isPending && !(await view.apply(true))) {
        break;
      }
    }
    this._updateApproveAll();
  }

  /** Draw what changed since the last render; cheap to call once per frame. */
  render(): void {
    for (const view of this._stepViews.values()) {
      if (view.dirty) {
        view.dirty = false;
        if (view.plain) {
          view.body.textContent = view.tool
            ? stepResultText(view.text)
            : view.text;
          continue;
        }
        view.body.innerHTML = renderAnswerMarkdown(view.text);
        enhanceCodeBlocks(view.body, this._codeBlocks, {
          highlight: !this._streaming
        });
      }
    }
    if (this._textDirty) {
      this._textDirty = false;
      // An agent's plan blocks already show the text before the last cut.
      this._markdown.innerHTML = renderAnswerMarkdown(
        this._text.slice(this._cut)
      );
      const cited = linkCitations(
        this._markdown,
        this._citations,
        this._services.openCitation
      );
      // Colours once the text is final: highlighting every streamed frame would
      // redo every block's tokens dozens of times a second.
      enhanceCodeBlocks(this._markdown, this._codeBlocks, {
        highlight: !this._streaming
      });
      this._renderSources(cited);
    }
  }

  private _renderSources(cited: Set<number>): void {
    const citations = this._citations;
    // Keep an open "more sources" open across re-renders.
    const wasOpen =
      this._sources.querySelector<HTMLDetailsElement>(
        '.jp-RubberDuck-sources-more'
      )?.open ?? false;
    this._sources.replaceChildren(
      ...(citations.length
        ? [renderSources(citations, this._services.openCitation, cited)]
        : [])
    );
    const more = this._sources.querySelector<HTMLDetailsElement>(
      '.jp-RubberDuck-sources-more'
    );
    if (more && wasOpen) {
      more.open = true;
    }
  }

  private get _codeBlocks(): ICodeBlockServices {
    return this._services.codeBlocks ?? NO_LAB;
  }

  setStreaming(streaming: boolean): void {
    const finished = this._streaming && !streaming;
    this._streaming = streaming;
    if (streaming) {
      this.node.dataset.streaming = 'true';
      this.node.setAttribute('aria-busy', 'true');
    } else {
      delete this.node.dataset.streaming;
      delete this.node.dataset.thinking;
      this.node.removeAttribute('aria-busy');
      this._approveAll = false;
      // A step left open by a failed turn is finished too.
      for (const step of this._stepViews.keys()) {
        if (this._stepViews.get(step)?.node.dataset.status === 'started') {
          this.finishStep(step);
        }
      }
      if (finished) {
        // The final text, now with syntax colours.
        this._textDirty = true;
        this._stepViews.forEach(view => (view.dirty = true));
        this.render();
      }
    }
  }

  /** A line under the answer: "(stopped)", "(the answer was cut off)", the usage. */
  appendLine(line: HTMLElement): void {
    this.node.append(line);
  }

  private _step(
    step: string,
    title: string,
    tool: IStepTool | null = null
  ): IStepView {
    let view = this._stepViews.get(step);
    if (view) {
      return view;
    }
    const node = element('details', 'jp-RubberDuck-step');
    node.dataset.step = step;
    const summary = element('summary', 'jp-RubberDuck-step-summary');
    const state = element('span', 'jp-RubberDuck-step-state');
    // The space lets a narrow sidebar wrap the state under a long title.
    summary.append(
      element('span', 'jp-RubberDuck-step-title', title),
      ' ',
      state
    );
    const plain = this._agent || tool !== null;
    const body = element(
      'div',
      plain
        ? 'jp-RubberDuck-step-body jp-RubberDuck-step-plain'
        : 'jp-RubberDuck-markdown jp-RubberDuck-step-body'
    );
    node.append(summary);
    if (tool) {
      node.dataset.tool = tool.name;
      const args = element('div', 'jp-RubberDuck-step-args');
      args.append(
        element('div', 'jp-RubberDuck-step-label', 'Arguments'),
        element(
          'pre',
          'jp-RubberDuck-step-argsText',
          prettyArguments(tool.arguments)
        )
      );
      node.append(args);
    }
    node.append(body);
    this._steps.append(node);
    view = { node, state, body, text: '', dirty: false, tool, plain };
    this._stepViews.set(step, view);
    return view;
  }

  /** The text since the last cut becomes a plan block before the step about to start. */
  private _cutPlan(): void {
    const plan = this._text.slice(this._cut);
    this._cut = this._text.length;
    this._textDirty = true;
    if (!plan.trim()) {
      return;
    }
    const block = element('div', 'jp-RubberDuck-markdown jp-RubberDuck-plan');
    block.innerHTML = renderAnswerMarkdown(plan);
    linkCitations(block, this._citations, this._services.openCitation);
    enhanceCodeBlocks(block, this._codeBlocks, { actions: 'copy' });
    this._steps.append(block);
  }

  /** "Approve all (n)" above the suggestions while two or more wait. */
  private _updateApproveAll(): void {
    const pending = [...this._suggestionViews.values()].filter(
      v => v.isPending
    ).length;
    if (pending < 2) {
      this._approveAllButton?.remove();
      this._approveAllButton = null;
      return;
    }
    if (!this._approveAllButton) {
      const node = button(
        'jp-RubberDuck-approveAll',
        'Apply every pending suggestion of this answer, in order (each keeps an Undo)',
        ''
      );
      node.addEventListener('click', () => void this.approveAll());
      this._approveAllButton = node;
      this._suggestions.prepend(node);
    }
    this._approveAllButton.textContent = `Approve all (${pending})`;
  }

  private _head: HTMLElement;
  private _notices: HTMLElement;
  private _steps: HTMLElement;
  private _markdown: HTMLElement;
  private _corrections: HTMLElement;
  private _sources: HTMLElement;
  private _suggestions: HTMLElement;
  private _stepViews = new Map<string, IStepView>();
  private _suggestionViews = new Map<string, SuggestionView>();
  private _agent = false;
  private _reviewOnCards = false;
  /** Where the answer's own text starts: before it, the plan blocks show it. */
  private _cut = 0;
  /** Review rounds waiting for the suggestion they are about. */
  private _reviewRounds: ICorrection[] = [];
  private _approveAll = false;
  private _approveAllButton: HTMLButtonElement | null = null;
  private _citations: ICitation[] = [];
  private _text = '';
  private _textDirty = false;
  private _streaming = false;
}

/**
 * The agent's review rounds on one edit, for its card: the gate reports a round's
 * findings when it refuses the edit, and the same round again (`fixed`) once the
 * corrected edit passed, so a round shows once, as found and then fixed.
 */
export function renderReviewRounds(
  rounds: readonly ICorrection[]
): HTMLElement[] {
  const byRound = new Map<number, ICorrection>();
  for (const round of rounds) {
    const earlier = byRound.get(round.round);
    byRound.set(
      round.round,
      earlier && round.fixed && !round.findings.length
        ? { ...earlier, fixed: true }
        : round
    );
  }
  return [...byRound.values()].map((round, i) => {
    const node = renderCorrection(round, i + 1);
    const count = round.findings.length;
    const summary = node.querySelector('summary');
    if (summary) {
      summary.textContent = !count
        ? 'Reviewed: no problems'
        : round.fixed
          ? `Reviewed: ${plural(count, 'problem')} found, fixed by the agent before offering it`
          : `Reviewed: ${plural(count, 'problem')}`;
    }
    return node;
  });
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** "Checked code: round 1 — 2 problems", expandable to the findings. */
export function renderCorrection(
  correction: ICorrection,
  shownRound: number
): HTMLElement {
  const node = element('details', 'jp-RubberDuck-correction');
  node.dataset.round = String(correction.round);
  node.dataset.fixed = String(correction.fixed);
  const count = correction.findings.length;
  const problems = count ? plural(count, 'problem') : 'no problems';
  // `fixed`: this version has no errors left (warnings may remain).
  const fixed = correction.fixed && count ? ' (no errors)' : '';
  node.append(
    element(
      'summary',
      'jp-RubberDuck-correction-summary',
      `Checked code: round ${shownRound} — ${problems}${fixed}`
    )
  );
  if (count) {
    const list = element('ul', 'jp-RubberDuck-findings');
    for (const finding of correction.findings) {
      const item = element('li', 'jp-RubberDuck-finding');
      item.dataset.severity = finding.severity;
      if (finding.line) {
        item.append(
          element(
            'span',
            'jp-RubberDuck-finding-where',
            `line ${finding.line}: `
          )
        );
      }
      if (finding.code) {
        item.append(
          element('code', 'jp-RubberDuck-finding-code', finding.code),
          ' '
        );
      }
      item.append(finding.message);
      if (finding.fix) {
        item.append(
          element('span', 'jp-RubberDuck-finding-fix', ` — ${finding.fix}`)
        );
      }
      list.append(item);
    }
    node.append(list);
  }
  return node;
}
