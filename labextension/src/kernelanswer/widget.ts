/**
 * The view of a `%%duck` answer in a cell output: a rendermime renderer that the output
 * area keeps and calls again (`renderModel`) each time the kernel updates the display.
 *
 * Each update carries the whole answer; the view changes only what changed, so nothing
 * flickers and the user keeps what they did: the answer's Markdown is rendered as the
 * sidebar renders it (markdown.ts: marked, then JupyterLab's and our own sanitizer) and
 * compared block by block with what is shown, so only the growing last block is
 * replaced while earlier ones (their code toolbars, a focused button, "Copied") stay;
 * steps, suggestions and the Stop button are kept by identity, a `<details>` the user
 * opened stays open. The state lives in model.ts; this file only draws it.
 */
import type { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import type { ServerConnection } from '@jupyterlab/services';
import type { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { describeError, rubberduckRequest } from '../api';
import { linkCitations, openCitation, renderSources } from '../citations';
import {
  enhanceCodeBlocks,
  highlightBlock,
  ICodeBlockServices,
  ICodeBlockTarget
} from '../codeblock';
import { button, element } from '../dom';
import { renderNoticeAction } from '../indexstatus/notice';
import { renderAnswerMarkdown, renderMarkdownInto } from '../markdown';
import type { ICitation } from '../protocol';
import { ISuggestionActions, SuggestionView } from '../suggestion';
import {
  IKernelAnswer,
  IKernelAnswerStep,
  KERNEL_ANSWER_MIME,
  KernelAnswerModel,
  NEEDS_NEWER,
  noticeAction
} from './model';

/** What the renderer needs from the lab; all of it optional but the server settings. */
export interface IKernelAnswerServices {
  commands: CommandRegistry | null;
  notebooks: INotebookTracker | null;
  languages: IEditorLanguageRegistry | null;
  suggestions: ISuggestionActions;
  /** This page's server, where Stop is posted. */
  serverSettings: ServerConnection.ISettings;
  /** Whether a bundle's server_url is this page's server. */
  isSameServer(url: string | null): boolean;
}

const FINAL = new Set(['done', 'error', 'stopped']);

interface IStepView {
  node: HTMLDetailsElement;
  title: HTMLElement;
  state: HTMLElement;
  body: HTMLElement;
  text: string | null;
}

export class KernelAnswerRenderer
  extends Widget
  implements IRenderMime.IRenderer
{
  constructor(private readonly _services: IKernelAnswerServices) {
    super();
    this.addClass('jp-RubberDuck-kernelAnswer');
    this._model = new KernelAnswerModel(url => _services.isSameServer(url));
    this._codeBlocks = {
      notebooks: _services.notebooks,
      languages: _services.languages,
      target: () => this._ownCell(),
      noTarget:
        'Insert below works on an answer in an open notebook; this one is not in ' +
        'one. Copy the code instead.'
    };
    this._title = element('div', 'jp-RubberDuck-kernelAnswer-title');
    this._notices = element('div', 'jp-RubberDuck-notices');
    this._steps = element('div', 'jp-RubberDuck-kernelAnswer-steps');
    this._markdown = element(
      'div',
      'jp-RubberDuck-markdown jp-RubberDuck-kernelAnswer-markdown'
    );
    this._sources = element('div', 'jp-RubberDuck-sources-slot');
    this._suggestions = element('div', 'jp-RubberDuck-suggestions');
    const footer = element('div', 'jp-RubberDuck-kernelAnswer-footer');
    this._status = element('span', 'jp-RubberDuck-kernelAnswer-status');
    this._status.setAttribute('role', 'status');
    this._stop = button(
      'jp-RubberDuck-kernelAnswer-stop',
      'Stop this answer',
      'Stop'
    );
    this._stop.addEventListener('click', () => void this._requestStop());
    footer.append(this._status, this._stop);
    this._fallback = element('div', 'jp-RubberDuck-kernelAnswer-fallback');
    this._body = element('div', 'jp-RubberDuck-kernelAnswer-body');
    this._body.append(
      this._title,
      this._notices,
      this._steps,
      this._markdown,
      this._sources,
      this._suggestions,
      footer
    );
    this.node.append(this._body, this._fallback);
  }

  /** The state behind the view (for tests and the plugin). */
  get model(): KernelAnswerModel {
    return this._model;
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    try {
      const parsed = this._model.update(model.data[KERNEL_ANSWER_MIME]);
      if (parsed.ok) {
        this._draw(parsed.answer);
      } else {
        this._drawFallback(model.data);
      }
    } catch (reason) {
      // Drawing must never take the output area down: show the plain text instead.
      console.warn('RubberDuck: could not draw the answer', reason);
      this._drawFallback(model.data);
    }
    return Promise.resolve();
  }

  // --- drawing -----------------------------------------------------------------------

  private _draw(answer: IKernelAnswer): void {
    this._body.hidden = false;
    this._fallback.hidden = true;
    this._fallback.replaceChildren();
    const final = FINAL.has(answer.status);
    this.node.dataset.status = answer.status;
    this.node.setAttribute('aria-busy', String(!final));
    setText(this._title, answer.title ?? '');
    this._title.hidden = !answer.title;
    this._drawNotices(answer);
    this._drawSteps(answer.steps, final);
    this._drawMarkdown(answer.markdown, answer.citations);
    if (final) {
      this._highlight(this._markdown);
    }
    this._drawSuggestions(answer);
    this._drawFooter();
  }

  /** An unreadable bundle: the kernel's plain fallback text, as text, never HTML. */
  private _drawFallback(data: IRenderMime.IMimeModel['data']): void {
    this._body.hidden = true;
    this._fallback.hidden = false;
    delete this.node.dataset.status;
    this.node.removeAttribute('aria-busy');
    const markdown = data['text/markdown'];
    const plain = data['text/plain'];
    const text =
      typeof markdown === 'string'
        ? markdown
        : typeof plain === 'string'
          ? plain
          : '';
    const parts: HTMLElement[] = [];
    if (this._model.unreadable === 'newer' || !text) {
      parts.push(
        element(
          'div',
          'jp-RubberDuck-kernelAnswer-note',
          this._model.unreadable === 'newer'
            ? NEEDS_NEWER
            : 'This RubberDuck answer could not be read.'
        )
      );
    }
    if (text) {
      parts.push(
        element('div', 'jp-RubberDuck-kernelAnswer-plain', text.slice(0, 1e6))
      );
    }
    this._fallback.replaceChildren(...parts);
  }

  private _drawNotices(answer: IKernelAnswer): void {
    const here = this._model.fromThisServer;
    const key = `${here}|${JSON.stringify(answer.notices)}`;
    if (key === this._noticesKey) {
      return;
    }
    this._noticesKey = key;
    this._notices.replaceChildren(
      ...answer.notices.map(notice => {
        const banner = element(
          'div',
          'jp-RubberDuck-info jp-RubberDuck-notice-text'
        );
        renderMarkdownInto(banner, notice.message);
        banner.dataset.code = notice.code;
        banner.setAttribute('role', 'note');
        enhanceCodeBlocks(banner, this._codeBlocks, { actions: 'copy' });
        // The action comes from the notice's code (e.g. "Index this project"), never
        // from the bundle: a kernel cannot pick a command for the page to run.
        renderNoticeAction(banner, {
          ...notice,
          action: noticeAction(notice.code, here)
        });
        return banner;
      })
    );
  }

  /** Steps are collapsed (the answer is what matters); an opened one stays open. */
  private _drawSteps(steps: IKernelAnswerStep[], final: boolean): void {
    const seen = new Set<string>();
    for (const [index, step] of steps.entries()) {
      seen.add(step.step);
      let view = this._stepViews.get(step.step);
      if (!view) {
        view = this._newStep(step.step);
        this._stepViews.set(step.step, view);
      }
      placeAt(this._steps, view.node, index);
      const finished = step.status === 'finished' || final;
      setText(view.title, step.title);
      setText(view.state, finished ? 'done' : 'thinking…');
      view.node.dataset.status = finished ? 'finished' : 'started';
      if (view.text !== step.text) {
        view.text = step.text;
        view.body.innerHTML = renderAnswerMarkdown(step.text);
        enhanceCodeBlocks(view.body, this._codeBlocks, { actions: 'copy' });
      }
      if (final) {
        this._highlight(view.body);
      }
    }
    for (const [id, view] of this._stepViews) {
      if (!seen.has(id)) {
        view.node.remove();
        this._stepViews.delete(id);
      }
    }
  }

  private _newStep(step: string): IStepView {
    const node = element('details', 'jp-RubberDuck-step');
    node.dataset.step = step;
    const summary = element('summary', 'jp-RubberDuck-step-summary');
    const title = element('span', 'jp-RubberDuck-step-title');
    const state = element('span', 'jp-RubberDuck-step-state');
    summary.append(title, state);
    const body = element(
      'div',
      'jp-RubberDuck-markdown jp-RubberDuck-step-body'
    );
    node.append(summary, body);
    return { node, title, state, body, text: null };
  }

  /**
   * The answer, block by block: a top-level block whose sanitized HTML is what is shown
   * already stays as it is; the others are drawn again. New citations redraw all (their
   * links live in the text).
   */
  private _drawMarkdown(markdown: string, citations: ICitation[]): void {
    const citeKey = JSON.stringify(citations);
    if (citeKey !== this._citationsKey) {
      this._citationsKey = citeKey;
      this._markdown.replaceChildren();
    }
    if (markdown === this._shownMarkdown && this._markdown.hasChildNodes()) {
      return;
    }
    this._shownMarkdown = markdown;
    const scratch = document.createElement('div');
    scratch.innerHTML = renderAnswerMarkdown(markdown);
    const fresh = Array.from(scratch.childNodes).filter(
      node => node.nodeType !== Node.TEXT_NODE || node.textContent?.trim()
    );
    const shown = Array.from(this._markdown.children) as HTMLElement[];
    fresh.forEach((node, i) => {
      const html =
        node.nodeType === Node.ELEMENT_NODE
          ? (node as Element).outerHTML
          : (node.textContent ?? '');
      const old = shown[i];
      if (old && this._blockHtml.get(old) === html) {
        return;
      }
      const block = element('div', 'jp-RubberDuck-kernelAnswer-block');
      block.append(node);
      this._blockHtml.set(block, html);
      if (old) {
        old.replaceWith(block);
      } else {
        this._markdown.append(block);
      }
      this._blockCited.set(
        block,
        linkCitations(block, citations, this._openCitation)
      );
      enhanceCodeBlocks(block, this._codeBlocks, { actions: 'insert' });
    });
    shown.slice(fresh.length).forEach(node => node.remove());
    this._nameCodeBlocks();
    this._drawSources(citations);
  }

  /** Each block's buttons say which block they act on. */
  private _nameCodeBlocks(): void {
    const blocks = this._markdown.querySelectorAll<HTMLElement>(
      '.jp-RubberDuck-codeblock'
    );
    blocks.forEach((block, i) => {
      const language = block.dataset.language;
      const name = `code block ${i + 1}${language ? ` (${language})` : ''}`;
      const label = (action: string, text: string): void => {
        const node = block.querySelector<HTMLElement>(
          `:scope > .jp-RubberDuck-codeblock-toolbar [data-action='${action}']`
        );
        if (node && node.getAttribute('aria-label') !== text) {
          node.setAttribute('aria-label', text);
          node.title = text;
        }
      };
      label('copy', `Copy ${name} to the clipboard`);
      label('insert', `Insert ${name} as a new cell below this cell`);
    });
  }

  private _drawSources(citations: ICitation[]): void {
    const cited = new Set<number>();
    for (const block of Array.from(this._markdown.children)) {
      this._blockCited.get(block)?.forEach(n => cited.add(n));
    }
    const key = `${this._citationsKey}|${[...cited].sort().join(',')}`;
    if (key === this._sourcesKey) {
      return;
    }
    this._sourcesKey = key;
    const wasOpen =
      this._sources.querySelector<HTMLDetailsElement>(
        '.jp-RubberDuck-sources-more'
      )?.open ?? false;
    this._sources.replaceChildren(
      ...(citations.length
        ? [renderSources(citations, this._openCitation, cited)]
        : [])
    );
    const more = this._sources.querySelector<HTMLDetailsElement>(
      '.jp-RubberDuck-sources-more'
    );
    if (more && wasOpen) {
      more.open = true;
    }
  }

  /** Syntax colours once the text is final (highlightBlock skips coloured blocks). */
  private _highlight(root: HTMLElement): void {
    const languages = this._services.languages;
    if (!languages) {
      return;
    }
    root
      .querySelectorAll<HTMLElement>('.jp-RubberDuck-codeblock pre > code')
      .forEach(code => void highlightBlock(code, languages));
  }

  /** One view per suggestion id, made once: its Apply state is the user's. */
  private _drawSuggestions(answer: IKernelAnswer): void {
    const blocked = this._model.applyBlockedReason;
    const seen = new Set<string>();
    for (const [index, suggestion] of answer.suggestions.entries()) {
      seen.add(suggestion.id);
      const key = `${suggestion.id}|${blocked ?? ''}`;
      let view = this._suggestionViews.get(suggestion.id);
      if (!view || this._suggestionKeys.get(suggestion.id) !== key) {
        const fresh = new SuggestionView(
          suggestion,
          this._services.suggestions,
          blocked
        );
        if (view) {
          view.node.replaceWith(fresh.node);
        }
        view = fresh;
        this._suggestionViews.set(suggestion.id, view);
        this._suggestionKeys.set(suggestion.id, key);
      }
      placeAt(this._suggestions, view.node, index);
    }
    for (const [id, view] of this._suggestionViews) {
      if (!seen.has(id)) {
        view.node.remove();
        this._suggestionViews.delete(id);
        this._suggestionKeys.delete(id);
      }
    }
  }

  private _drawFooter(): void {
    const line = this._note ?? this._model.statusLine;
    setText(this._status, line.text);
    this._status.dataset.kind = line.kind;
    const stop = this._model.stopButton;
    this._stop.hidden = stop === null;
    if (stop) {
      setText(this._stop, stop.label);
      this._stop.disabled = stop.disabled;
      const label = stop.reason ?? 'Stop this answer';
      this._stop.title = label;
      this._stop.setAttribute(
        'aria-label',
        stop.label === 'Stop' ? label : 'Stopping this answer'
      );
    }
  }

  // --- actions -----------------------------------------------------------------------

  private async _requestStop(): Promise<void> {
    const answer = this._model.answer;
    if (!answer || !this._model.startStopping()) {
      return;
    }
    this._note = null;
    this._drawFooter();
    try {
      const response = await rubberduckRequest(
        this._services.serverSettings,
        ['chat', 'cancel'],
        { method: 'POST', body: { id: answer.turn_id } }
      );
      const body = (await response.json().catch(() => null)) as {
        cancelled?: unknown;
      } | null;
      if (body?.cancelled === false && this._model.stopping) {
        // Saved mid-stream and reopened, or ended meanwhile: nothing to stop any more.
        this._model.markNotRunning();
        this.node.setAttribute('aria-busy', 'false');
        this._drawFooter();
      }
    } catch (error) {
      this._model.stopFailed();
      this._say('error', `Could not stop the answer: ${describeError(error)}`);
    }
  }

  /** A message in the status line until the next update of the answer. */
  private _say(kind: 'error', text: string): void {
    this._note = { kind, text };
    this._drawFooter();
    this._note = null;
  }

  private readonly _openCitation = (citation: ICitation): void => {
    const commands = this._services.commands;
    if (!commands) {
      return;
    }
    openCitation(commands, citation).catch(error =>
      this._say(
        'error',
        `Could not open ${citation.path}: ${(error as Error).message}`
      )
    );
  };

  /** The notebook cell whose output holds this answer, or null outside notebooks. */
  private _ownCell(): ICodeBlockTarget | null {
    let found: ICodeBlockTarget | null = null;
    this._services.notebooks?.forEach(panel => {
      if (found || !panel.node.contains(this.node)) {
        return;
      }
      const index = panel.content.widgets.findIndex(cell =>
        cell.node.contains(this.node)
      );
      if (index >= 0 && panel.content.model) {
        found = { panel, index };
      }
    });
    return found;
  }

  private readonly _model: KernelAnswerModel;
  private readonly _codeBlocks: ICodeBlockServices;
  private readonly _body: HTMLElement;
  private readonly _title: HTMLElement;
  private readonly _notices: HTMLElement;
  private readonly _steps: HTMLElement;
  private readonly _markdown: HTMLElement;
  private readonly _sources: HTMLElement;
  private readonly _suggestions: HTMLElement;
  private readonly _status: HTMLElement;
  private readonly _stop: HTMLButtonElement;
  private readonly _fallback: HTMLElement;
  private readonly _stepViews = new Map<string, IStepView>();
  private readonly _suggestionViews = new Map<string, SuggestionView>();
  private readonly _suggestionKeys = new Map<string, string>();
  private readonly _blockHtml = new WeakMap<Element, string>();
  private readonly _blockCited = new WeakMap<Element, Set<number>>();
  private _note: { kind: 'error'; text: string } | null = null;
  private _noticesKey = '';
  private _citationsKey = '';
  private _sourcesKey = '';
  private _shownMarkdown: string | null = null;
}

/** Set text only when it differs, so screen readers and selections are not disturbed. */
function setText(node: HTMLElement, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

/**
 * Put `node` at `index` among `parent`'s children, only if it is not there already:
 * moving a node takes the focus out of it.
 */
function placeAt(parent: HTMLElement, node: HTMLElement, index: number): void {
  const here = parent.children[index] ?? null;
  if (here !== node) {
    parent.insertBefore(node, here);
  }
}
