/**
 * The index's views: a status-bar item (what the index is doing, a small progress bar
 * while indexing) and the panel it opens (folders to index, Re-index, Stop, the last
 * report). Both follow IndexStatusModel.changed; neither polls itself.
 */
import { Widget } from '@lumino/widgets';

import {
  describeStatus,
  IIndexReport,
  IIndexStatus,
  IndexStatusModel
} from './model';
import { ScopeChoice } from './scope';

/** Short, human names for the server's skip codes (docs/index.md lists them). */
const SKIP_NAMES: Record<string, string> = {
  outside_root: 'outside the project',
  hidden: 'hidden or secret',
  gitignored: 'ignored by .gitignore',
  unsupported_kind: 'not a text kind we index',
  too_large: 'too large',
  binary: 'binary',
  unreadable: 'unreadable',
  not_regular: 'not a regular file',
  other: 'other'
};

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export class IndexStatusItem extends Widget {
  constructor(
    private readonly _model: IndexStatusModel,
    private readonly _open: () => void
  ) {
    super();
    this.addClass('jp-RubberDuck-indexStatus');
    const node = this.node;
    node.tabIndex = 0;
    node.setAttribute('role', 'button');
    this._label = el('span', 'jp-RubberDuck-indexStatus-label');
    this._bar = el('span', 'jp-RubberDuck-indexStatus-bar');
    this._bar.setAttribute('role', 'progressbar');
    this._bar.setAttribute('aria-valuemin', '0');
    this._fill = el('span', 'jp-RubberDuck-indexStatus-fill');
    this._bar.append(this._fill);
    node.append(this._label, this._bar);
    node.addEventListener('click', () => this._open());
    node.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        this._open();
      }
    });
    _model.changed.connect(this._render, this);
    this._render();
  }

  private _render(): void {
    const status = this._model.status;
    const { label, description } = describeStatus(
      status,
      this._model.fetchError
    );
    const activity = this._model.fetchError
      ? 'error'
      : (status?.activity ?? 'unknown');
    this.node.dataset.activity = activity;
    this._label.textContent = label;
    this.node.title = `${description} Click to open the index panel.`;
    this.node.setAttribute(
      'aria-label',
      `${description} Open the index panel.`
    );
    const indexing = activity === 'indexing';
    this._bar.hidden = !indexing;
    this.node.dataset.quality = status?.quality ?? '';
    if (indexing && status && status.phase === 'improving') {
      // The second tier: the bar follows the chunks given the full model's vectors.
      const percent = Math.floor(100 * (status.improving ?? 0));
      this._bar.setAttribute('aria-valuemax', '100');
      this._bar.setAttribute('aria-valuenow', String(percent));
      this._bar.setAttribute(
        'aria-label',
        `searchable; ${percent}% of the chunks have the full model's vectors`
      );
      this._fill.style.width = `${percent}%`;
    } else if (indexing && status) {
      const total = status.total ?? 0;
      const done = status.done ?? 0;
      this._bar.setAttribute('aria-valuemax', String(Math.max(total, 1)));
      this._bar.setAttribute('aria-valuenow', String(done));
      this._bar.setAttribute('aria-label', `${done} of ${total} files indexed`);
      const share = total > 0 ? Math.min(1, done / total) : 0;
      this._fill.style.width = `${Math.round(share * 100)}%`;
    }
  }

  private _label: HTMLElement;
  private _bar: HTMLElement;
  private _fill: HTMLElement;
}

/** The panel's body: scope checkboxes, Re-index and Stop, the last report. */
export class IndexPanel extends Widget {
  constructor(
    private readonly _model: IndexStatusModel,
    private readonly _folders: () => Promise<string[]>
  ) {
    super();
    this.addClass('jp-RubberDuck-indexPanel');
    this.title.label = 'Project index';
    this._state = el('p', 'jp-RubberDuck-indexPanel-state');
    this._state.setAttribute('role', 'status');
    this._state.setAttribute('aria-live', 'polite');
    const scope = el('fieldset', 'jp-RubberDuck-indexPanel-scope');
    const legend = el('legend', '', 'Folders to index');
    this._whole = this._checkbox('The whole project', '');
    this._list = el('div', 'jp-RubberDuck-indexPanel-folders');
    scope.append(legend, this._whole.label, this._list);
    const actions = el('div', 'jp-RubberDuck-indexPanel-actions');
    this._reindex = el('button', 'jp-mod-styled jp-mod-accept', 'Re-index');
    this._reindex.type = 'button';
    this._reindex.addEventListener('click', () => void this._startIndexing());
    this._stop = el('button', 'jp-mod-styled jp-mod-warn', 'Stop');
    this._stop.type = 'button';
    this._stop.addEventListener('click', () => void this._stopIndexing());
    actions.append(this._reindex, this._stop);
    this._problem = el('p', 'jp-RubberDuck-indexPanel-problem');
    this._problem.setAttribute('role', 'alert');
    this._report = el('div', 'jp-RubberDuck-indexPanel-report');
    this.node.append(this._state, scope, actions, this._problem, this._report);
    this._whole.input.addEventListener('change', () => {
      this._scope.setWhole(this._whole.input.checked);
      this._drawScope();
    });
    this._list.addEventListener('change', event => {
      const input = event.target as HTMLInputElement;
      this._scope.setFolder(input.value, input.checked);
      this._drawScope();
    });
    // Until the folders are listed, the saved scope alone says what Re-index would do.
    this._scope.load([], _model.status?.scope ?? []);
    this._drawScope();
    _model.changed.connect(this._render, this);
    this._render();
    void this._loadFolders();
  }

  /** The scope the checkboxes say: [] for the whole project. */
  get chosenScope(): string[] {
    return this._scope.scope;
  }

  private _checkbox(
    text: string,
    value: string
  ): { label: HTMLLabelElement; input: HTMLInputElement; value: string } {
    const label = el('label', 'jp-RubberDuck-indexPanel-choice');
    const input = el('input', '');
    input.type = 'checkbox';
    input.value = value;
    label.append(input, ` ${text}`);
    return { label, input, value };
  }

  private async _loadFolders(): Promise<void> {
    let names: string[] = [];
    try {
      names = await this._folders();
    } catch (error) {
      this._problem.textContent = (error as Error).message;
    }
    this._scope.load(names, this._model.status?.scope ?? []);
    this._boxes = names.map(name => this._checkbox(`${name}/`, name));
    this._list.replaceChildren(...this._boxes.map(b => b.label));
    this._drawScope();
  }

  /** The checkboxes as ScopeChoice says: folders unticked and greyed under the whole. */
  private _drawScope(): void {
    this._whole.input.checked = this._scope.whole;
    const boxes = this._scope.boxes;
    this._boxes.forEach((box, index) => {
      const state = boxes[index];
      box.input.checked = state.checked;
      box.input.disabled = state.disabled;
      box.label.classList.toggle('jp-mod-disabled', state.disabled);
    });
    this._list.title = this._scope.whole
      ? 'The whole project is indexed: untick it to choose folders'
      : '';
  }

  private async _startIndexing(): Promise<void> {
    const scope = this.chosenScope;
    if (!this._scope.isValid) {
      this._problem.textContent =
        'Choose at least one folder, or the whole project.';
      return;
    }
    this._problem.textContent = '';
    try {
      await this._model.start(scope);
    } catch (error) {
      this._problem.textContent = (error as Error).message;
    }
  }

  private async _stopIndexing(): Promise<void> {
    try {
      await this._model.stop();
    } catch (error) {
      this._problem.textContent = (error as Error).message;
    }
  }

  private _render(): void {
    const status = this._model.status;
    this._state.textContent = describeStatus(
      status,
      this._model.fetchError
    ).description;
    const indexing = status?.activity === 'indexing';
    this._reindex.disabled = indexing;
    // "Re-index" of a project never indexed reads as if something had been lost.
    const never = !status || (status.files === 0 && status.lastReport === null);
    this._reindex.textContent = never ? 'Index' : 'Re-index';
    this._stop.disabled = !indexing || status?.stopping === true;
    this.node.dataset.activity = status?.activity ?? 'unknown';
    this._report.replaceChildren(...renderReport(status));
  }

  private _state: HTMLElement;
  private _whole: {
    label: HTMLLabelElement;
    input: HTMLInputElement;
    value: string;
  };
  private _list: HTMLElement;
  private _boxes: {
    label: HTMLLabelElement;
    input: HTMLInputElement;
    value: string;
  }[] = [];
  private _scope = new ScopeChoice();
  private _reindex: HTMLButtonElement;
  private _stop: HTMLButtonElement;
  private _problem: HTMLElement;
  private _report: HTMLElement;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function renderReport(status: IIndexStatus | null): Node[] {
  const report: IIndexReport | null = status?.lastReport ?? null;
  const heading = el('h3', 'jp-RubberDuck-indexPanel-heading', 'Last run');
  if (!report) {
    return [heading, el('p', '', 'No indexing run yet.')];
  }
  const summary = el(
    'p',
    'jp-RubberDuck-indexPanel-summary',
    `${plural(report.filesIndexed, 'file')} indexed, ${report.filesUnchanged} unchanged, ` +
      `${report.filesRemoved} removed; ${plural(report.chunks, 'chunk')} in ` +
      `${report.seconds.toFixed(1)} s${report.cancelled ? ' (stopped)' : ''}. ` +
      `Index now: ${plural(status?.files ?? 0, 'file')}, ${plural(status?.chunks ?? 0, 'chunk')}.`
  );
  const nodes: Node[] = [heading, summary];
  if (report.skippedTotal > 0) {
    const reasons = Object.entries(report.skippedByReason)
      .map(([code, n]) => `${n} ${SKIP_NAMES[code] ?? code}`)
      .join(', ');
    const details = el('details', 'jp-RubberDuck-indexPanel-skipped');
    const title = el(
      'summary',
      '',
      `${report.skippedTotal} skipped: ${reasons}`
    );
    const list = el('ul', '');
    for (const skip of report.skipped) {
      const item = el('li', '');
      item.dataset.code = skip.code;
      item.append(el('code', '', skip.path), ` — ${skip.reason}`);
      list.append(item);
    }
    if (report.skipped.length < report.skippedTotal) {
      list.append(
        el(
          'li',
          '',
          `… and ${report.skippedTotal - report.skipped.length} more`
        )
      );
    }
    details.append(title, list);
    nodes.push(details);
  }
  for (const error of report.errors.slice(0, 20)) {
    nodes.push(
      el(
        'p',
        'jp-RubberDuck-indexPanel-error',
        `${error.path}: ${error.reason}`
      )
    );
  }
  return nodes;
}
