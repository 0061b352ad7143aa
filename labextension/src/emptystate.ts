/**
 * What an empty conversation shows instead of the log: a line of what RubberDuck is for
 * and a few starting points. "Index this project" is offered only once the command that
 * builds the index exists (another plugin registers it).
 */
import { element } from './dom';

export interface IStartingPoints {
  explainNotebook(): void;
  fixLastError(): void;
  reviewCell(): void;
  indexProject(): void;
  /** Whether indexing can be offered now. */
  canIndex(): boolean;
}

export class EmptyState {
  readonly node: HTMLElement;

  constructor(private readonly _starts: IStartingPoints) {
    const node = element('div', 'jp-RubberDuck-empty');
    node.append(
      element(
        'p',
        'jp-RubberDuck-empty-intro',
        'Ask RubberDuck about the notebook you are working in, or start here:'
      )
    );
    const starts = element('div', 'jp-RubberDuck-starts');
    starts.setAttribute('role', 'group');
    starts.setAttribute('aria-label', 'Starting points');
    const start = (
      label: string,
      title: string,
      run: () => void
    ): HTMLButtonElement => {
      const item = element('button', 'jp-RubberDuck-start', label);
      item.type = 'button';
      item.title = title;
      item.addEventListener('click', run);
      starts.append(item);
      return item;
    };
    start('Explain this notebook', 'Ask what the open notebook does', () =>
      _starts.explainNotebook()
    );
    start(
      'Fix the last error',
      'Ask for a fix of the newest failed cell of the open notebook',
      () => _starts.fixLastError()
    );
    start('Review the active cell', 'Review the code of the active cell', () =>
      _starts.reviewCell()
    );
    this._index = start(
      'Index this project',
      "Build the project's index, so answers can cite your files",
      () => _starts.indexProject()
    );
    node.append(starts);
    this.node = node;
  }

  /** Shown while the conversation is empty; the index offer follows its command. */
  update(empty: boolean): void {
    this.node.hidden = !empty;
    this._index.hidden = !this._starts.canIndex();
  }

  setFontSize(size: string): void {
    this.node.style.fontSize = size;
  }

  private _index: HTMLButtonElement;
}
