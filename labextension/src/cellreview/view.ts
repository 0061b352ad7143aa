/**
 * The findings widget under a cell's editor: what `CellReviewModel` holds for that cell,
 * drawn again on each change. Each finding says its severity, line, message and rule; a
 * finding with a checked fix has "Show fix" (a diff with Accept and Reject); the model's
 * review streams below, its suggestion offered the same way. A stale review is greyed,
 * says so, offers "Review again" and no Accept.
 */
import { Widget } from '@lumino/widgets';

import { unifiedDiff } from '../diff';
import { diffView } from '../diffview';
import { button, element } from '../dom';
import { renderAnswerMarkdown } from '../markdown';
import type { ISuggestion } from '../protocol';
import type { ISuggestionActions } from '../suggestion';
import { SuggestionView } from '../suggestion';
import {
  findingOrigin,
  ICellFinding,
  ICellReviewState,
  Severity,
  severityCountsText
} from './model';

export interface IFindingsActions {
  /** Put the fix on the cell, after the hash check; rejects with a reason to show. */
  accept(finding: ICellFinding): Promise<void>;
  reviewAgain(): void;
  dismiss(): void;
  goToLine(line: number): void;
  suggestionActions: ISuggestionActions;
}

const SEVERITY_LABEL: Record<Severity, string> = {
  error: 'Error',
  warning: 'Warning',
  info: 'Info'
};
// Shapes as well as colours, so severity does not rest on colour alone.
const SEVERITY_GLYPH: Record<Severity, string> = {
  error: '\u2716',
  warning: '\u25B2',
  info: '\u25CF'
};

export function severityBadge(severity: Severity): HTMLElement {
  const badge = element(
    'span',
    `jp-RubberDuck-severity jp-mod-${severity}`,
    SEVERITY_GLYPH[severity]
  );
  badge.setAttribute('role', 'img');
  badge.setAttribute('aria-label', SEVERITY_LABEL[severity]);
  badge.title = SEVERITY_LABEL[severity];
  return badge;
}

/**
 * Which plugin made `finding`, as muted text to put after its rule; null for
 * RubberDuck's own checks. A screen reader hears "found by plugin pandas-review".
 */
export function originTag(finding: ICellFinding): HTMLElement | null {
  const origin = findingOrigin(finding);
  if (origin === null) {
    return null;
  }
  const tag = element('span', 'jp-RubberDuck-finding-origin');
  tag.dataset.plugin = origin;
  tag.title = `Found by the ${origin} plugin`;
  tag.append(
    element('span', 'jp-RubberDuck-srOnly', 'found by plugin '),
    origin
  );
  return tag;
}

export class FindingsWidget extends Widget {
  constructor(private readonly _actions: IFindingsActions) {
    super();
    this.addClass('jp-RubberDuck-cellReview');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'RubberDuck review of this cell');
  }

  /** Draws `review`; `open` keeps a shown diff open across redraws. */
  render(review: ICellReviewState, suggestion: ISuggestion | null): void {
    this._review = review;
    this._suggestion = suggestion;
    const node = this.node;
    node.replaceChildren();
    node.classList.toggle('jp-mod-stale', review.stale);

    const head = element('div', 'jp-RubberDuck-cellReview-head');
    const title = element(
      'span',
      'jp-RubberDuck-cellReview-title',
      'RubberDuck review'
    );
    const summary = element(
      'span',
      'jp-RubberDuck-cellReview-counts',
      severityCountsText(review.findings) || 'No findings'
    );
    head.append(title, summary);
    if (review.stale) {
      const label = element(
        'span',
        'jp-RubberDuck-cellReview-staleLabel',
        'Stale: the cell changed since this review'
      );
      head.append(label);
    }
    const again = button(
      'jp-RubberDuck-cellReview-again jp-mod-styled',
      'Review this cell again',
      'Review again'
    );
    again.addEventListener('click', () => this._actions.reviewAgain());
    const close = button(
      'jp-RubberDuck-cellReview-dismiss',
      'Dismiss this review',
      '\u00D7'
    );
    close.addEventListener('click', () => this._actions.dismiss());
    head.append(again, close);
    node.append(head);

    const list = element('ul', 'jp-RubberDuck-cellReview-findings');
    list.setAttribute('aria-label', 'Findings');
    review.findings.forEach((finding, index) =>
      list.append(this._row(finding, index))
    );
    if (review.findings.length) {
      node.append(list);
    }
    node.append(this._modelSection(review));
  }

  private _row(finding: ICellFinding, index: number): HTMLElement {
    const review = this._review!;
    const row = element('li', 'jp-RubberDuck-finding');
    row.dataset.code = finding.code;
    row.dataset.severity = finding.severity;
    const line = button(
      'jp-RubberDuck-finding-line',
      `Go to line ${finding.line}`,
      `Line ${finding.line}`
    );
    line.addEventListener('click', () => this._actions.goToLine(finding.line));
    const message = element(
      'span',
      'jp-RubberDuck-finding-message',
      finding.message
    );
    const code = element('code', 'jp-RubberDuck-finding-code', finding.code);
    row.append(severityBadge(finding.severity), line, message, code);
    const origin = originTag(finding);
    if (origin) {
      row.append(origin);
    }
    if (finding.scope === 'notebook') {
      const scope = element(
        'span',
        'jp-RubberDuck-finding-scope',
        finding.relatedCell !== null
          ? `across cells (cell ${finding.relatedCell + 1})`
          : 'across cells'
      );
      row.append(scope);
    }
    if (finding.fix && finding.replacement === null) {
      row.append(element('span', 'jp-RubberDuck-finding-fix', finding.fix));
    }
    if (finding.replacement !== null) {
      const open = this._open.has(index);
      const show = button(
        'jp-RubberDuck-finding-showFix jp-mod-styled',
        `${open ? 'Hide' : 'Show'} the fix for ${finding.code} on line ${finding.line}`,
        open ? 'Hide fix' : 'Show fix'
      );
      show.setAttribute('aria-expanded', String(open));
      show.addEventListener('click', () => {
        if (open) {
          this._open.delete(index);
        } else {
          this._open.add(index);
        }
        this.render(review, this._suggestion);
      });
      row.append(show);
      if (open) {
        row.append(this._fixPanel(finding, index));
      }
    }
    return row;
  }

  private _fixPanel(finding: ICellFinding, index: number): HTMLElement {
    const review = this._review!;
    const panel = element('div', 'jp-RubberDuck-finding-fixPanel');
    if (finding.fix) {
      panel.append(element('div', 'jp-RubberDuck-finding-fix', finding.fix));
    }
    panel.append(
      diffView(
        unifiedDiff(review.source, finding.replacement ?? '', []) ?? [],
        'jp-RubberDuck-cellReview-diff',
        'Proposed change (unified diff)'
      )
    );
    const actions = element('div', 'jp-RubberDuck-finding-actions');
    const accept = button(
      'jp-RubberDuck-finding-accept jp-mod-styled jp-mod-accept',
      review.stale
        ? 'The cell changed since this review: review it again to accept a fix'
        : `Accept the fix for ${finding.code}: replace the cell's code`,
      'Accept'
    );
    accept.disabled = review.stale;
    const reject = button(
      'jp-RubberDuck-finding-reject jp-mod-styled',
      `Reject the fix for ${finding.code}`,
      'Reject'
    );
    const status = element('span', 'jp-RubberDuck-finding-status');
    status.setAttribute('role', 'status');
    accept.addEventListener('click', () => {
      accept.disabled = true;
      this._actions.accept(finding).catch((error: Error) => {
        status.textContent = error.message;
        accept.disabled = false;
      });
    });
    reject.addEventListener('click', () => {
      this._open.delete(index);
      this.render(review, this._suggestion);
    });
    actions.append(accept, reject, status);
    panel.append(actions);
    return panel;
  }

  private _modelSection(review: ICellReviewState): HTMLElement {
    const section = element('div', 'jp-RubberDuck-cellReview-model');
    section.dataset.state = review.modelState;
    if (review.modelState === 'idle') {
      return section;
    }
    section.append(
      element(
        'div',
        'jp-RubberDuck-cellReview-modelTitle',
        "The model's review"
      )
    );
    if (review.modelState === 'streaming' && !review.modelText) {
      const waiting = element(
        'div',
        'jp-RubberDuck-cellReview-waiting',
        'Reviewing\u2026'
      );
      waiting.setAttribute('role', 'status');
      section.append(waiting);
    }
    if (review.modelText) {
      const text = element('div', 'jp-RubberDuck-cellReview-modelText');
      text.innerHTML = renderAnswerMarkdown(review.modelText);
      section.append(text);
    }
    if (review.modelState === 'error') {
      const error = element(
        'div',
        'jp-RubberDuck-cellReview-error',
        review.modelError
      );
      error.setAttribute('role', 'alert');
      section.append(error);
    }
    const suggestion = this._suggestion;
    if (suggestion && suggestion.status === 'proposed' && !review.stale) {
      section.append(
        new SuggestionView(suggestion, this._actions.suggestionActions).node
      );
    } else if (suggestion && review.stale) {
      section.append(
        element(
          'div',
          'jp-RubberDuck-finding-fix',
          "The model's suggested change is for the code as it was; review again for a fresh one."
        )
      );
    }
    return section;
  }

  private _review: ICellReviewState | null = null;
  private _suggestion: ISuggestion | null = null;
  private _open = new Set<number>();
}
