/**
 * Code blocks in answers: a toolbar per block (Copy, Insert below, Replace, Show as
 * diff) and syntax colours from JupyterLab's own highlighter.
 *
 * Insert and Replace act on the active cell of the current notebook (the one the
 * notebook tracker last saw focused) through the notebook's shared model, so the
 * notebook's and the cell editor's undo take them back. The toolbar is a
 * `role="toolbar"`: Tab reaches its first button, the arrow keys move between buttons
 * (one Tab stop per block, so a long answer is not a wall of Tab presses).
 */
import type {
  IEditorLanguageRegistry,
  IEditorLanguage
} from '@jupyterlab/codemirror';
import { jupyterHighlightStyle } from '@jupyterlab/codemirror';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { unifiedDiff } from './diff';
import { diffView } from './diffview';
import { button, element } from './dom';

/** What code blocks need from the lab; each part optional so views work without it. */
export interface ICodeBlockServices {
  notebooks: INotebookTracker | null;
  languages: IEditorLanguageRegistry | null;
  /**
   * The cell Insert, Replace and Show diff act on (a cell output's answer gives its
   * own cell); the current notebook's active cell when not given.
   */
  target?: () => ICodeBlockTarget | null;
  /** What a click says when `target` finds no cell. */
  noTarget?: string;
}

/** A notebook and the index of the cell an action is about. */
export interface ICodeBlockTarget {
  panel: NotebookPanel;
  index: number;
}

/**
 * Which actions a block offers: all of them, Copy alone (code shown as text), or Copy
 * and Insert below.
 */
export type CodeBlockActions = 'all' | 'copy' | 'insert';

const NO_NOTEBOOK =
  'Open a notebook and click into a cell first: Insert and Replace work on the ' +
  "active notebook's active cell.";

/** Where Insert and Replace land, or null with nothing open. */
function activeTarget(services: ICodeBlockServices): ICodeBlockTarget | null {
  if (services.target) {
    return services.target();
  }
  const panel = services.notebooks?.currentWidget ?? null;
  const notebook = panel?.content;
  if (!panel || !notebook?.model || !notebook.activeCell) {
    return null;
  }
  return { panel, index: notebook.activeCellIndex };
}

function cellLabel(panel: NotebookPanel, index: number): string {
  return `cell ${index + 1} of ${panel.context.path || 'the notebook'}`;
}

/** The text of a fenced block as Markdown wrote it (marked adds a final newline). */
function blockCode(code: HTMLElement): string {
  return (code.textContent ?? '').replace(/\n$/, '');
}

function blockLanguage(code: HTMLElement): string | null {
  const match = /(?:^|\s)language-([\w+#.-]+)/.exec(code.className);
  return match ? match[1] : null;
}

let stylesMounted = false;

/**
 * The highlighter's token classes are styled by CodeMirror's style module, which
 * JupyterLab mounts only once an editor exists; a sidebar opened before any notebook
 * would show the tokens uncoloured. The rules use JupyterLab's --jp-mirror-editor-*
 * variables, so light and dark colours are the theme's own.
 */
function mountHighlightStyles(): void {
  if (stylesMounted) {
    return;
  }
  stylesMounted = true;
  const rules = jupyterHighlightStyle.module?.getRules();
  if (rules) {
    const style = document.createElement('style');
    style.dataset.rubberduck = 'highlight';
    style.textContent = rules;
    document.head.append(style);
  }
}

/** Colour one block's code in place; its text stays exactly the same. */
export async function highlightBlock(
  code: HTMLElement,
  languages: IEditorLanguageRegistry
): Promise<void> {
  const name = blockLanguage(code);
  if (!name || code.dataset.highlighted) {
    return;
  }
  const language: IEditorLanguage | null = languages.findBest(name);
  if (!language) {
    return;
  }
  const text = code.textContent ?? '';
  const scratch = document.createElement('code');
  try {
    await languages.highlight(text, language, scratch);
  } catch (reason) {
    console.warn(`RubberDuck: could not highlight ${name} code`, reason);
    return;
  }
  // Only if the block was not re-rendered meanwhile, and the colouring kept the text.
  if (code.isConnected && scratch.textContent === text) {
    mountHighlightStyles();
    code.replaceChildren(...Array.from(scratch.childNodes));
    code.dataset.highlighted = 'true';
  }
}

/**
 * Give every `pre > code` under `root` a toolbar (and colours when `highlight`).
 * Safe to call again on the same DOM: blocks already done are skipped.
 */
export function enhanceCodeBlocks(
  root: HTMLElement,
  services: ICodeBlockServices,
  options: { actions?: CodeBlockActions; highlight?: boolean } = {}
): void {
  const actions = options.actions ?? 'all';
  for (const code of Array.from(root.querySelectorAll('pre > code'))) {
    const pre = code.parentElement as HTMLPreElement;
    if (pre.parentElement?.classList.contains('jp-RubberDuck-codeblock')) {
      continue;
    }
    const view = new CodeBlockView(pre, code as HTMLElement, services, actions);
    if (options.highlight && services.languages) {
      void highlightBlock(view.code, services.languages);
    }
  }
}

/** One block: the wrapper, its toolbar, a status line and the diff when shown. */
class CodeBlockView {
  constructor(
    pre: HTMLPreElement,
    readonly code: HTMLElement,
    private readonly _services: ICodeBlockServices,
    actions: CodeBlockActions
  ) {
    const wrapper = element('div', 'jp-RubberDuck-codeblock');
    const language = blockLanguage(code);
    if (language) {
      wrapper.dataset.language = language;
    }
    pre.replaceWith(wrapper);
    // The block scrolls inside itself; Tab can reach it to scroll by keyboard.
    pre.tabIndex = 0;
    pre.setAttribute(
      'aria-label',
      language ? `Code (${language})` : 'Code block'
    );
    const toolbar = element('div', 'jp-RubberDuck-codeblock-toolbar');
    toolbar.setAttribute('role', 'toolbar');
    toolbar.setAttribute('aria-label', 'Code block actions');
    toolbar.setAttribute('aria-orientation', 'horizontal');
    if (language) {
      toolbar.dataset.language = language; // shown at its start (answer.css)
    }
    this._status = element('span', 'jp-RubberDuck-codeblock-status');
    this._status.setAttribute('role', 'status');
    const buttons = [
      this._button('copy', 'Copy the code to the clipboard', 'Copy', () =>
        this._copy()
      )
    ];
    if (actions === 'insert') {
      buttons.push(
        this._button(
          'insert',
          'Insert the code as a new cell below this cell',
          'Insert below',
          () => this._insert()
        )
      );
    }
    if (actions === 'all') {
      buttons.push(
        this._button(
          'insert',
          'Insert the code as a new cell below the active cell',
          'Insert below',
          () => this._insert()
        ),
        this._button(
          'replace',
          "Replace the active cell's code with this code",
          'Replace cell',
          () => this._replace()
        ),
        this._button(
          'diff',
          'Show how this code differs from the active cell',
          'Show diff',
          () => this._toggleDiff()
        )
      );
      this._diffButton = buttons[buttons.length - 1];
      this._diffButton.setAttribute('aria-pressed', 'false');
    }
    buttons.forEach((b, i) => (b.tabIndex = i === 0 ? 0 : -1));
    toolbar.addEventListener('keydown', event => moveFocus(event, buttons));
    toolbar.append(...buttons);
    wrapper.append(toolbar, pre, this._status);
    this._wrapper = wrapper;
  }

  private _button(
    action: string,
    label: string,
    text: string,
    run: () => Promise<void> | void
  ): HTMLButtonElement {
    const node = button('jp-RubberDuck-codeblock-button', label, text);
    node.dataset.action = action;
    node.addEventListener('click', () => void run());
    return node;
  }

  private _say(text: string, kind: 'ok' | 'error' = 'ok'): void {
    this._status.textContent = text;
    this._status.dataset.kind = kind;
  }

  private async _copy(): Promise<void> {
    const text = blockCode(this.code);
    try {
      await navigator.clipboard.writeText(text);
      this._say('Copied');
    } catch (reason) {
      this._say(
        `Could not copy: ${(reason as Error)?.message ?? reason}. Select the code and ` +
          'press Ctrl+C instead.',
        'error'
      );
    }
  }

  private _insert(): void {
    const target = activeTarget(this._services);
    if (!target) {
      this._say(this._services.noTarget ?? NO_NOTEBOOK, 'error');
      return;
    }
    const { panel, index } = target;
    // Through the shared model: one undoable notebook change (Z in command mode).
    panel.content.model!.sharedModel.insertCell(index + 1, {
      cell_type: 'code',
      source: blockCode(this.code)
    });
    panel.content.activeCellIndex = index + 1;
    const inserted = panel.content.widgets[index + 1];
    if (inserted) {
      void panel.content.scrollToCell(inserted);
    }
    this._say(`Inserted as ${cellLabel(panel, index + 1)}`);
  }

  private _replace(): void {
    const target = activeTarget(this._services);
    if (!target) {
      this._say(this._services.noTarget ?? NO_NOTEBOOK, 'error');
      return;
    }
    const { panel, index } = target;
    const cell = panel.content.activeCell!;
    // setSource is one transaction on the cell's text: the editor's undo restores it.
    cell.model.sharedModel.setSource(blockCode(this.code));
    this._say(
      `Replaced ${cellLabel(panel, index)} (Ctrl+Z in the cell undoes it)`
    );
    if (this._diff) {
      this._showDiff();
    }
  }

  private _toggleDiff(): void {
    if (this._diff) {
      this._diff.remove();
      this._diff = null;
      this._diffButton?.setAttribute('aria-pressed', 'false');
      this._say('');
      return;
    }
    this._showDiff();
  }

  private _showDiff(): void {
    const target = activeTarget(this._services);
    if (!target) {
      this._say(this._services.noTarget ?? NO_NOTEBOOK, 'error');
      return;
    }
    const { panel, index } = target;
    const current = panel.content.activeCell!.model.sharedModel.getSource();
    const label = cellLabel(panel, index);
    const lines = unifiedDiff(current, blockCode(this.code), [
      `--- ${label}`,
      '+++ the code block'
    ]);
    const pre = diffView(
      lines && lines.length > 2 ? lines : [],
      'jp-RubberDuck-codeblock-diff',
      `Changes from ${label} to this code`
    );
    if (lines === null) {
      pre.textContent = 'Too large to compare here.';
    } else if (lines.length <= 2) {
      pre.textContent = `No difference: ${label} already has this code.`;
    }
    this._diff?.remove();
    this._diff = pre;
    this._wrapper.append(pre);
    this._diffButton?.setAttribute('aria-pressed', 'true');
    this._say(`Compared with ${label}`);
  }

  private _wrapper: HTMLElement;
  private _status: HTMLElement;
  private _diffButton: HTMLButtonElement | null = null;
  private _diff: HTMLElement | null = null;
}

/** Arrow keys, Home and End within a toolbar (the roving tab stop follows focus). */
function moveFocus(event: KeyboardEvent, buttons: HTMLButtonElement[]): void {
  const current = buttons.indexOf(document.activeElement as HTMLButtonElement);
  if (current < 0) {
    return;
  }
  let next = current;
  switch (event.key) {
    case 'ArrowRight':
      next = (current + 1) % buttons.length;
      break;
    case 'ArrowLeft':
      next = (current - 1 + buttons.length) % buttons.length;
      break;
    case 'Home':
      next = 0;
      break;
    case 'End':
      next = buttons.length - 1;
      break;
    default:
      return;
  }
  event.preventDefault();
  event.stopPropagation();
  buttons[current].tabIndex = -1;
  buttons[next].tabIndex = 0;
  buttons[next].focus();
}
