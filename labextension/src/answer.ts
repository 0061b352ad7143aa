/**
 * One assistant answer: the engine's badge, notices, reasoning steps, the answer text,
 * self-correction rounds, sources and suggestions. Built live from a turn's frames or
 * at once from a stored message; the same DOM either way.
 */
import { linkCitations, OpenCitation, renderSources } from './citations';
import { enhanceCodeBlocks, ICodeBlockServices } from './codeblock';
import { element } from './dom';
import { renderAnswerMarkdown, renderMarkdownInto } from './markdown';
import {
  ICitation,
  ICorrection,
  INotice,
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

  startStep(step: string, title: string): void {
    const view = this._step(step, title);
    view.node.dataset.status = 'started';
    view.node.open = true;
    view.state.textContent = 'thinking…';
    this.node.dataset.thinking = 'true';
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
    // Numbered by arrival: the server counts its first check as round 0.
    const shown = this._corrections.childElementCount + 1;
    this._corrections.append(renderCorrection(correction, shown));
  }

  addSuggestion(suggestion: ISuggestion): void {
    const view = new SuggestionView(suggestion, this._services.suggestions);
    this._suggestions.append(view.node);
  }

  /** Draw what changed since the last render; cheap to call once per frame. */
  render(): void {
    for (const view of this._stepViews.values()) {
      if (view.dirty) {
        view.dirty = false;
        view.body.innerHTML = renderAnswerMarkdown(view.text);
        enhanceCodeBlocks(view.body, this._codeBlocks, {
          highlight: !this._streaming
        });
      }
    }
    if (this._textDirty) {
      this._textDirty = false;
      this._markdown.innerHTML = renderAnswerMarkdown(this._text);
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

  private _step(step: string, title: string): IStepView {
    let view = this._stepViews.get(step);
    if (view) {
      return view;
    }
    const node = element('details', 'jp-RubberDuck-step');
    node.dataset.step = step;
    const summary = element('summary', 'jp-RubberDuck-step-summary');
    const state = element('span', 'jp-RubberDuck-step-state');
    summary.append(element('span', 'jp-RubberDuck-step-title', title), state);
    const body = element(
      'div',
      'jp-RubberDuck-markdown jp-RubberDuck-step-body'
    );
    node.append(summary, body);
    this._steps.append(node);
    view = { node, state, body, text: '', dirty: false };
    this._stepViews.set(step, view);
    return view;
  }

  private _head: HTMLElement;
  private _notices: HTMLElement;
  private _steps: HTMLElement;
  private _markdown: HTMLElement;
  private _corrections: HTMLElement;
  private _sources: HTMLElement;
  private _suggestions: HTMLElement;
  private _stepViews = new Map<string, IStepView>();
  private _citations: ICitation[] = [];
  private _text = '';
  private _textDirty = false;
  private _streaming = false;
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
