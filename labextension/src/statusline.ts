/**
 * The line under the message box: the connection and model (what chatmodel.ts's
 * statusLine says) and what the conversation has spent so far.
 */
import { IStatusInput, statusLine } from './chatmodel';
import { element } from './dom';
import { IUsageTotals } from './protocol';
import { spendText } from './usage';

export class StatusLine {
  readonly node: HTMLElement;

  constructor() {
    this.node = element('div', 'jp-RubberDuck-statusbar');
    this._status = element('div', 'jp-RubberDuck-status');
    this._status.setAttribute('role', 'status');
    this._spend = element('div', 'jp-RubberDuck-spend');
    this.node.append(this._status, this._spend);
  }

  show(input: IStatusInput): void {
    const { state, text } = statusLine(input);
    this._status.dataset.state = state;
    this._status.textContent = text;
  }

  showSpend(totals: Readonly<IUsageTotals>): void {
    const text = spendText(totals);
    this._spend.textContent = text;
    this._spend.hidden = !text;
    this._spend.title = totals.unpriced_requests
      ? `${totals.unpriced_requests} of ${totals.requests} answers came from ` +
        'models without a known price, so the cost leaves them out'
      : '';
  }

  private _status: HTMLElement;
  private _spend: HTMLElement;
}
