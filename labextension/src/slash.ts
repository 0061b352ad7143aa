/**
 * Slash-command completion for the message box: typing "/" at the start opens a list of
 * the commands the server's engines answer to, filtered as you type.
 * Up/Down move, Enter or Tab take the highlighted command, Escape closes; a click works too.
 */
import { element, uniqueId } from './dom';
import { IEngineInfo } from './protocol';

export interface ISlashCommand {
  /** With its slash: "/review". */
  command: string;
  /** The engine's title, e.g. "Review". */
  title: string;
  description: string;
}

// Answered by RubberDuck itself; offered even if a server's hello leaves them out.
const BUILT_IN: ISlashCommand[] = [
  {
    command: '/help',
    title: 'Help',
    description: 'Lists the commands.'
  },
  {
    command: '/prefs',
    title: 'Preferences',
    description: 'Shows or sets how RubberDuck answers you.'
  }
];

/** Every command of every engine, once, in the server's order, then the built-ins. */
export function slashCommands(engines: IEngineInfo[]): ISlashCommand[] {
  const seen = new Set<string>();
  const out: ISlashCommand[] = [];
  const add = (item: ISlashCommand): void => {
    if (!seen.has(item.command)) {
      seen.add(item.command);
      out.push(item);
    }
  };
  for (const engine of engines) {
    for (const command of engine.commands) {
      add({
        command,
        title: engine.title,
        description: engine.description
      });
    }
  }
  BUILT_IN.forEach(add);
  return out;
}

// The command being typed: a slash and word characters from the start, caret at its end.
const TYPING = /^\/[\w-]*$/;

export class SlashCompleter {
  /** The list; the panel places it above the message box. */
  readonly node: HTMLElement;

  constructor(private readonly _input: HTMLTextAreaElement) {
    const list = element('ul', 'jp-RubberDuck-slash');
    list.id = uniqueId('jp-RubberDuck-slash');
    list.setAttribute('role', 'listbox');
    list.setAttribute('aria-label', 'Commands');
    list.hidden = true;
    // mousedown, not click: the box must keep focus (and its caret) while picking.
    list.addEventListener('mousedown', event => {
      const option = (event.target as HTMLElement).closest<HTMLElement>(
        '[role="option"]'
      );
      if (option) {
        event.preventDefault();
        this._accept(Number(option.dataset.index));
      }
    });
    this.node = list;
    _input.setAttribute('aria-autocomplete', 'list');
    _input.setAttribute('aria-controls', list.id);
    _input.setAttribute('aria-expanded', 'false');
    _input.addEventListener('input', () => this.update());
    _input.addEventListener('blur', () => this.close());
    _input.addEventListener('click', () => this.update());
  }

  get isOpen(): boolean {
    return !this.node.hidden;
  }

  setCommands(commands: ISlashCommand[]): void {
    this._commands = commands;
    // A "/" typed before the server's hello (which brings the commands) found nothing to
    // show; once they arrive, show them for what is already in the box.
    if (this.isOpen || document.activeElement === this._input) {
      this.update();
    }
  }

  /** Re-filter for what is typed; open or close accordingly. */
  update(): void {
    const input = this._input;
    const typed = input.value.slice(0, input.selectionStart ?? 0);
    if (!TYPING.test(typed) || input.selectionStart !== input.selectionEnd) {
      this.close();
      return;
    }
    const prefix = typed.toLowerCase();
    const matches = this._commands.filter(c => c.command.startsWith(prefix));
    if (!matches.length) {
      this.close();
      return;
    }
    const previous = this._matches[this._active]?.command;
    this._matches = matches;
    const keep = matches.findIndex(c => c.command === previous);
    this._active = keep >= 0 ? keep : 0;
    this._render();
  }

  close(): void {
    if (!this.isOpen) {
      return;
    }
    this.node.hidden = true;
    this.node.replaceChildren();
    this._matches = [];
    this._input.setAttribute('aria-expanded', 'false');
    this._input.removeAttribute('aria-activedescendant');
  }

  /** Handle a key in the box; true when the key was the list's and must go no further. */
  handleKey(event: KeyboardEvent): boolean {
    if (!this.isOpen || event.isComposing) {
      return false;
    }
    switch (event.key) {
      case 'ArrowDown':
        this._move(1);
        break;
      case 'ArrowUp':
        this._move(-1);
        break;
      case 'Enter':
      case 'Tab':
        if (event.shiftKey) {
          return false;
        }
        if (event.key === 'Enter' && this._typedExactly()) {
          // "/fix" typed in full: Enter sends it, as it would any message.
          this.close();
          return false;
        }
        this._accept(this._active);
        break;
      case 'Escape':
        this.close();
        break;
      default:
        return false;
    }
    event.preventDefault();
    event.stopPropagation();
    return true;
  }

  private _typedExactly(): boolean {
    const input = this._input;
    const typed = input.value.slice(0, input.selectionStart ?? 0);
    return this._matches[this._active]?.command === typed.toLowerCase();
  }

  private _move(step: number): void {
    const count = this._matches.length;
    this._active = (this._active + step + count) % count;
    this._render();
  }

  private _accept(index: number): void {
    const match = this._matches[index];
    if (!match) {
      return;
    }
    const input = this._input;
    const caret = input.selectionStart ?? 0;
    const rest = input.value.slice(caret).replace(/^[\w-]*/, '');
    const head = `${match.command} `;
    input.value = head + rest.replace(/^ /, '');
    input.setSelectionRange(head.length, head.length);
    this.close();
    input.focus();
  }

  private _render(): void {
    const list = this.node;
    const options = this._matches.map((match, index) => {
      const option = element('li', 'jp-RubberDuck-slash-option');
      option.id = `${list.id}-${index}`;
      option.setAttribute('role', 'option');
      option.dataset.index = String(index);
      option.dataset.command = match.command;
      const selected = index === this._active;
      option.setAttribute('aria-selected', String(selected));
      const head = element('span', 'jp-RubberDuck-slash-head');
      head.append(
        element('span', 'jp-RubberDuck-slash-command', match.command),
        element('span', 'jp-RubberDuck-slash-title', match.title)
      );
      option.append(head);
      if (match.description) {
        // Shown, not only a tooltip: the list is where a new user learns the commands.
        option.append(
          element('span', 'jp-RubberDuck-slash-description', match.description)
        );
      }
      option.title = match.description;
      return option;
    });
    list.replaceChildren(...options);
    list.hidden = false;
    this._input.setAttribute('aria-expanded', 'true');
    const active = options[this._active];
    if (active) {
      this._input.setAttribute('aria-activedescendant', active.id);
      active.scrollIntoView({ block: 'nearest' });
    }
  }

  private _commands: ISlashCommand[] = BUILT_IN.slice();
  private _matches: ISlashCommand[] = [];
  private _active = 0;
}
