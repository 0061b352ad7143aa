/**
 * The status-bar toggle of inline completion: "Complete: on", "off" or "unavailable",
 * the reason in its tooltip. A real button (Tab reaches it, Enter and Space press it);
 * colours come from JupyterLab's theme variables, so it follows light and dark themes.
 */
import { Widget } from '@lumino/widgets';

import { CompletionStatusModel } from './status';

const LABELS = {
  checking: 'Complete: …',
  on: 'Complete: on',
  off: 'Complete: off',
  unavailable: 'Complete: unavailable'
} as const;

export class CompletionStatusItem extends Widget {
  constructor(
    private readonly _model: CompletionStatusModel,
    private readonly _toggle: () => void
  ) {
    super({ node: document.createElement('button') });
    this.addClass('jp-RubberDuck-completionStatus');
    const button = this.node as HTMLButtonElement;
    button.type = 'button';
    button.addEventListener('click', () => this._toggle());
    _model.changed.connect(this._render, this);
    this._render();
  }

  private _render(): void {
    const state = this._model.state;
    const button = this.node as HTMLButtonElement;
    button.dataset.state = state;
    button.textContent = LABELS[state];
    button.title = this._model.title;
    button.setAttribute('aria-label', this._model.title);
    // A switch only while the server can complete; otherwise the click re-checks.
    if (state === 'on' || state === 'off') {
      button.setAttribute('aria-pressed', String(state === 'on'));
    } else {
      button.removeAttribute('aria-pressed');
    }
  }
}
