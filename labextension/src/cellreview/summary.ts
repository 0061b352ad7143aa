/**
 * The notebook review's bar above the cells (the panel's content header): a progress
 * bar with the cells done out of the total and a Cancel that stops the run, then the
 * summary, counts by severity and one row per cell that jumps to it (or the error that
 * stopped the pass).
 */
import type { Cell } from '@jupyterlab/cells';
import type { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { button, element } from '../dom';
import {
  countBySeverity,
  ICellFinding,
  NotebookReviewRun,
  SEVERITIES,
  severityCountsText
} from './model';
import { originTag, severityBadge } from './view';

export interface ISummaryRow {
  cell: Cell;
  /** Position among the notebook's cells, 0-based. */
  index: number;
  findings: readonly ICellFinding[];
}

const bars = new WeakMap<NotebookPanel, NotebookReviewBar>();

export class NotebookReviewBar extends Widget {
  /** The panel's bar, created in its content header the first time. */
  static forPanel(panel: NotebookPanel): NotebookReviewBar {
    let bar = bars.get(panel);
    if (!bar || bar.isDisposed) {
      bar = new NotebookReviewBar();
      bars.set(panel, bar);
      panel.contentHeader.addWidget(bar);
    }
    bar.show();
    return bar;
  }

  constructor() {
    super();
    this.addClass('jp-RubberDuck-notebookReview');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'RubberDuck notebook review');
  }

  showProgress<T>(run: NotebookReviewRun<T>): void {
    this.node.replaceChildren();
    const label = element('span', 'jp-RubberDuck-notebookReview-label');
    const progress = element(
      'progress',
      'jp-RubberDuck-notebookReview-progress'
    );
    progress.setAttribute('aria-label', 'Cells reviewed');
    progress.max = Math.max(1, run.total);
    progress.value = 0;
    const cancel = button(
      'jp-RubberDuck-notebookReview-cancel jp-mod-styled',
      'Cancel the notebook review',
      'Cancel'
    );
    cancel.addEventListener('click', () => {
      run.cancel();
      cancel.disabled = true;
      label.textContent = 'Cancelling\u2026';
    });
    const update = (done: number, total: number): void => {
      progress.value = done;
      progress.setAttribute('aria-valuetext', `${done} of ${total} cells`);
      if (!run.cancelled) {
        label.textContent = `Reviewing cells: ${done} / ${total}`;
      }
    };
    run.progress.connect((_, p) => update(p.done, p.total));
    update(0, run.total);
    this.node.append(label, progress, cancel);
    this._fit();
  }

  /** `retryAfter`: seconds the server asked to wait (the message already says so). */
  showError(message: string, retryAfter?: number): void {
    this.node.replaceChildren();
    const error = element(
      'span',
      'jp-RubberDuck-notebookReview-error',
      message
    );
    error.setAttribute('role', 'alert');
    if (retryAfter !== undefined) {
      // For styling and tests, as the sidebar's notices carry it.
      error.dataset.retryAfter = String(retryAfter);
    }
    this.node.append(error, this._closeButton());
    this._fit();
  }

  showSummary(
    rows: ISummaryRow[],
    done: number,
    total: number,
    cancelled: boolean,
    onJump: (cell: Cell) => void
  ): void {
    this.node.replaceChildren();
    const head = element('div', 'jp-RubberDuck-notebookReview-head');
    const all = rows.flatMap(row => row.findings);
    const counts = countBySeverity(all);
    const title = element(
      'span',
      'jp-RubberDuck-notebookReview-title',
      cancelled
        ? `Review cancelled after ${done} of ${total} cells`
        : `Reviewed ${total} code cell${total === 1 ? '' : 's'}`
    );
    title.setAttribute('role', 'status');
    head.append(title);
    for (const severity of SEVERITIES) {
      const count = element('span', 'jp-RubberDuck-notebookReview-count');
      count.dataset.severity = severity;
      count.append(severityBadge(severity), ` ${counts[severity]}`);
      head.append(count);
    }
    head.append(this._closeButton());
    this.node.append(head);
    if (!rows.length) {
      this.node.append(
        element('div', 'jp-RubberDuck-notebookReview-empty', 'No findings.')
      );
      this._fit();
      return;
    }
    const list = element('ul', 'jp-RubberDuck-notebookReview-rows');
    list.setAttribute('aria-label', 'Findings by cell');
    for (const row of rows) {
      const item = element('li', 'jp-RubberDuck-notebookReview-row');
      const text = severityCountsText(row.findings);
      const jump = button(
        'jp-RubberDuck-notebookReview-jump',
        `Go to cell ${row.index + 1}: ${text}`,
        `Cell ${row.index + 1}`
      );
      jump.dataset.cellIndex = String(row.index);
      jump.addEventListener('click', () => onJump(row.cell));
      const details = element('ul', 'jp-RubberDuck-notebookReview-findings');
      for (const finding of row.findings) {
        const line = element('li', 'jp-RubberDuck-notebookReview-finding');
        line.append(
          severityBadge(finding.severity),
          element('span', '', ` line ${finding.line}: ${finding.message} `),
          element('code', 'jp-RubberDuck-finding-code', finding.code)
        );
        const origin = originTag(finding);
        if (origin) {
          line.append(' ', origin);
        }
        details.append(line);
      }
      item.append(
        jump,
        element('span', 'jp-RubberDuck-notebookReview-rowCounts', text),
        details
      );
      list.append(item);
    }
    this.node.append(list);
    this._fit();
  }

  /** Lay the header out again: the bar's height changed. */
  private _refit(): void {
    this.parent?.fit();
    this.parent?.parent?.fit();
  }

  /**
   * The content header is a BoxPanel that sizes its children from their minimum height,
   * so the bar says how tall its content is (at most 40% of the window) after each draw.
   */
  private _fit(): void {
    this.node.style.minHeight = '';
    const height = Math.min(this.node.scrollHeight, window.innerHeight * 0.4);
    this.node.style.minHeight = `${Math.ceil(height)}px`;
    this._refit();
  }

  private _closeButton(): HTMLButtonElement {
    const close = button(
      'jp-RubberDuck-notebookReview-close',
      'Close the notebook review summary',
      '\u00D7'
    );
    close.addEventListener('click', () => {
      this.hide();
      this._refit();
    });
    return close;
  }
}
