/**
 * The panel's footer: the context chips and `@` list (chips.ts), the queued messages,
 * the slash-command list, the message box and its Send/Stop button. It draws and reports
 * what the user did; the panel decides what sending, stopping or queueing means.
 */
import type { INotebookTracker } from '@jupyterlab/notebook';

import { ContextBar } from './chips';
import { button, element } from './dom';
import { SlashCompleter } from './slash';

export interface IComposerHandlers {
  /** Enter in the box (Shift+Enter adds a line; the lists take Enter while open). */
  submit(): void;
  /** The Send/Stop button. */
  press(): void;
  /** The x of the queued message at `index`. */
  removeQueued(index: number): void;
}

export class Composer {
  /** The footer; the panel appends the status line under the box. */
  readonly node: HTMLElement;
  readonly input: HTMLTextAreaElement;
  readonly slash: SlashCompleter;
  /** hook(context): the chips and @ list; index.ts hands it the settings. */
  readonly contextBar: ContextBar;

  constructor(
    notebooks: INotebookTracker | null,
    private readonly _handlers: IComposerHandlers
  ) {
    const input = element('textarea', 'jp-RubberDuck-input');
    input.rows = 3;
    input.setAttribute('aria-label', 'Message RubberDuck');
    input.placeholder = 'Ask about your code… (/ for commands)';
    input.title =
      'Enter sends, Shift+Enter adds a line, / at the start lists the commands';
    this.input = input;
    this.slash = new SlashCompleter(input);
    this.contextBar = new ContextBar({ input, notebooks });
    this._queue = element('ul', 'jp-RubberDuck-queue');
    this._queue.setAttribute('aria-label', 'Queued messages');
    this._queue.hidden = true;
    this._send = element('button', 'jp-RubberDuck-send');
    this._send.type = 'button';
    this._send.addEventListener('click', () => this._handlers.press());
    const compose = element('div', 'jp-RubberDuck-compose');
    compose.append(input, this._send);
    this.node = element('div', 'jp-RubberDuck-footer');
    this.node.append(
      this.contextBar.node, // hook(context)
      this._queue,
      this.slash.node,
      compose
    );
    // On the box itself, so the open lists see a key before the panel (Escape there
    // stops an answer or closes the conversation list) and can keep it.
    input.addEventListener('keydown', event => this._onKeyDown(event));
    this.setStreaming(false, false);
  }

  /** The button says Stop while an answer streams; `disabled` while it cannot act. */
  setStreaming(streaming: boolean, disabled: boolean): void {
    const send = this._send;
    send.dataset.state = streaming ? 'stop' : 'send';
    send.textContent = streaming ? 'Stop' : 'Send';
    send.title = streaming ? 'Stop the answer (Escape)' : 'Send (Enter)';
    send.disabled = disabled;
  }

  /** The messages waiting for the answer to end, each with its remove button. */
  showQueue(queue: readonly string[]): void {
    const items = queue.map((text, index) => {
      const node = element('li', 'jp-RubberDuck-queued');
      const remove = button(
        'jp-RubberDuck-queued-remove',
        `Remove the queued message “${text.slice(0, 40)}”`,
        '×'
      );
      remove.addEventListener('click', () =>
        this._handlers.removeQueued(index)
      );
      node.append(
        element('span', 'jp-RubberDuck-queued-label', 'Queued'),
        element('span', 'jp-RubberDuck-queued-text', text),
        remove
      );
      return node;
    });
    this._queue.replaceChildren(...items);
    this._queue.hidden = !items.length;
  }

  setFontSize(size: string): void {
    this.input.style.fontSize = size;
  }

  focus(): void {
    this.input.focus();
  }

  dispose(): void {
    this.contextBar.dispose(); // hook(context)
  }

  private _onKeyDown(event: KeyboardEvent): void {
    if (this.slash.handleKey(event)) {
      return;
    }
    if (this.contextBar.handleKey(event)) {
      return; // hook(context)
    }
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      event.stopPropagation();
      this._handlers.submit();
    }
  }

  private _queue: HTMLElement;
  private _send: HTMLButtonElement;
}
