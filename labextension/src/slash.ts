/**
 * Slash-command completion for the message box: typing "/" at the start opens a list of
 * the commands the server's engines answer to, filtered as you type.
 * The keys are listbox.ts's (Up/Down, Home/End, Enter or Tab, Escape); a click works too.
 */
import { element } from './dom';
import { Listbox } from './listbox';
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
export function slashCommands(
  engines: readonly IEngineInfo[]
): ISlashCommand[] {
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
  constructor(private readonly _input: HTMLTextAreaElement) {
    this._list = new Listbox<ISlashCommand>({
      input: _input,
      className: 'jp-RubberDuck-slash',
      label: 'Commands',
      optionClass: () => 'jp-RubberDuck-slash-option',
      fill: (option, match) => {
        option.dataset.command = match.command;
        const head = element('span', 'jp-RubberDuck-slash-head');
        head.append(
          element('span', 'jp-RubberDuck-slash-command', match.command),
          element('span', 'jp-RubberDuck-slash-title', match.title)
        );
        option.append(head);
        if (match.description) {
          // Shown, not only a tooltip: the list is where a new user learns the commands.
          option.append(
            element(
              'span',
              'jp-RubberDuck-slash-description',
              match.description
            )
          );
        }
        option.title = match.description;
      },
      key: match => match.command,
      accept: match => this._accept(match),
      // "/fix" typed in full: Enter sends it, as it would any message.
      typedExactly: match => match.command === this._typed().toLowerCase()
    });
    _input.addEventListener('input', () => this.update());
    _input.addEventListener('blur', () => this.close());
    _input.addEventListener('click', () => this.update());
  }

  /** The list; the panel places it above the message box. */
  get node(): HTMLElement {
    return this._list.node;
  }

  get isOpen(): boolean {
    return this._list.isOpen;
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
    const typed = this._typed();
    if (!TYPING.test(typed) || input.selectionStart !== input.selectionEnd) {
      this.close();
      return;
    }
    const prefix = typed.toLowerCase();
    this._list.show(this._commands.filter(c => c.command.startsWith(prefix)));
  }

  close(): void {
    this._list.close();
  }

  /** Handle a key in the box; true when the key was the list's and must go no further. */
  handleKey(event: KeyboardEvent): boolean {
    return this._list.handleKey(event);
  }

  /** The box's text up to the caret. */
  private _typed(): string {
    const input = this._input;
    return input.value.slice(0, input.selectionStart ?? 0);
  }

  private _accept(match: ISlashCommand): void {
    const input = this._input;
    const caret = input.selectionStart ?? 0;
    const rest = input.value.slice(caret).replace(/^[\w-]*/, '');
    const head = `${match.command} `;
    input.value = head + rest.replace(/^ /, '');
    input.setSelectionRange(head.length, head.length);
    input.focus();
  }

  private _list: Listbox<ISlashCommand>;
  private _commands: ISlashCommand[] = BUILT_IN.slice();
}
