/**
 * A completion list under a text box, the ARIA combobox pattern: the focus stays in the
 * box (so typing goes on) while aria-activedescendant names the highlighted option.
 * Used by the slash commands (slash.ts) and the `@` mentions (chips.ts), which say what
 * the options are and what taking one does; this owns the keys and the ARIA state.
 *
 * Keys while the list is open: ArrowDown/ArrowUp move (wrapping), Home/End go to the
 * first/last option, Enter or Tab take the highlighted one, Escape closes. Shift+Enter
 * still adds a line; Enter on an option typed in full closes the list and goes on (the
 * message is sent). Closed, the list takes no key, so Home/End move the caret as usual.
 */
import { element, uniqueId } from './dom';

/** What a key does to an open list; null: the key is not the list's. */
export type ListKeyAction = 'move' | 'accept' | 'close' | null;

/** The highlighted option of a list of `count`, moved by keys; no DOM. */
export class ListNavigation {
  get count(): number {
    return this._count;
  }

  /** The highlighted option's index (0 when the list is empty). */
  get active(): number {
    return this._active;
  }

  /** A new list of `count` options, highlighting `keep` if it is one of them. */
  reset(count: number, keep = -1): void {
    this._count = count;
    this._active = keep >= 0 && keep < count ? keep : 0;
  }

  /** Apply `key`; a moving key changes `active`. */
  key(key: string, shiftKey = false): ListKeyAction {
    const count = this._count;
    if (!count) {
      return null;
    }
    switch (key) {
      case 'ArrowDown':
        this._active = (this._active + 1) % count;
        return 'move';
      case 'ArrowUp':
        this._active = (this._active - 1 + count) % count;
        return 'move';
      case 'Home':
        this._active = 0;
        return 'move';
      case 'End':
        this._active = count - 1;
        return 'move';
      case 'Enter':
      case 'Tab':
        return shiftKey ? null : 'accept';
      case 'Escape':
        return 'close';
      default:
        return null;
    }
  }

  private _count = 0;
  private _active = 0;
}

export interface IListboxOptions<T> {
  /** The box the list completes; it keeps the focus. */
  input: HTMLTextAreaElement;
  /** The list's class and its accessible name ("Commands"). */
  className: string;
  label: string;
  /** An option's class, then its content. */
  optionClass(item: T): string;
  fill(option: HTMLElement, item: T): void;
  /** What identifies an item across updates, so the highlight stays on it. */
  key(item: T): string;
  /** Take `item` (the list has closed already). */
  accept(item: T): void;
  /** The box already holds `item` in full: Enter then closes the list and goes on. */
  typedExactly(item: T): boolean;
}

export class Listbox<T> {
  readonly node: HTMLUListElement;

  constructor(private readonly _options: IListboxOptions<T>) {
    const list = element('ul', _options.className);
    list.id = uniqueId(_options.className);
    list.setAttribute('role', 'listbox');
    list.setAttribute('aria-label', _options.label);
    list.hidden = true;
    // mousedown, not click: the box keeps its focus and caret while picking.
    list.addEventListener('mousedown', event => {
      const option = (event.target as HTMLElement).closest<HTMLElement>(
        '[role="option"]'
      );
      if (option) {
        event.preventDefault();
        this._accept(Number(option.dataset.index));
      }
    });
    _options.input.setAttribute('aria-autocomplete', 'list');
    _options.input.setAttribute('aria-expanded', 'false');
    this.node = list;
  }

  get isOpen(): boolean {
    return !this.node.hidden;
  }

  /** The items as they stand now: opens the list, or closes it when there are none. */
  show(items: T[]): void {
    if (!items.length) {
      this.close();
      return;
    }
    const previous = this._items[this._nav.active];
    const before = previous === undefined ? null : this._options.key(previous);
    this._items = items;
    this._nav.reset(
      items.length,
      items.findIndex(item => this._options.key(item) === before)
    );
    this._render();
  }

  close(): void {
    if (!this.isOpen) {
      return;
    }
    this.node.hidden = true;
    this.node.replaceChildren();
    this._items = [];
    this._nav.reset(0);
    const input = this._options.input;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  }

  /** A key in the box; true when it was the list's and must go no further. */
  handleKey(event: KeyboardEvent): boolean {
    if (!this.isOpen || event.isComposing) {
      return false;
    }
    const active = this._items[this._nav.active];
    if (
      event.key === 'Enter' &&
      !event.shiftKey &&
      active !== undefined &&
      this._options.typedExactly(active)
    ) {
      this.close();
      return false;
    }
    switch (this._nav.key(event.key, event.shiftKey)) {
      case 'move':
        this._render();
        break;
      case 'accept':
        this._accept(this._nav.active);
        break;
      case 'close':
        this.close();
        break;
      case null:
        return false;
    }
    event.preventDefault();
    event.stopPropagation();
    return true;
  }

  private _accept(index: number): void {
    const item = this._items[index];
    if (item === undefined) {
      return;
    }
    this.close();
    this._options.accept(item);
  }

  private _render(): void {
    const list = this.node;
    const options = this._items.map((item, index) => {
      const option = element('li', this._options.optionClass(item));
      option.id = `${list.id}-${index}`;
      option.setAttribute('role', 'option');
      option.dataset.index = String(index);
      option.setAttribute('aria-selected', String(index === this._nav.active));
      this._options.fill(option, item);
      return option;
    });
    list.replaceChildren(...options);
    list.hidden = false;
    const input = this._options.input;
    // Two lists share the box: it points at whichever is open.
    input.setAttribute('aria-controls', list.id);
    input.setAttribute('aria-expanded', 'true');
    const active = options[this._nav.active];
    if (active) {
      input.setAttribute('aria-activedescendant', active.id);
      active.scrollIntoView({ block: 'nearest' });
    }
  }

  private _items: T[] = [];
  private _nav = new ListNavigation();
}
