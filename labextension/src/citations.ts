/**
 * Sources an answer cites: the "Sources" list, `[n]` markers in the answer linked to
 * them, and opening a source in JupyterLab at its cell or line.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { CommandRegistry } from '@lumino/commands';

import { element } from './dom';
import { ICitation } from './protocol';

export type OpenCitation = (citation: ICitation) => void;

/** "etl.ipynb, cell 4", "src/io.py:10-24" or the path alone. */
export function citationLocation(citation: ICitation): string {
  if (citation.cell !== null) {
    return `${citation.path}, cell ${citation.cell}`;
  }
  if (citation.start_line !== null) {
    const end =
      citation.end_line !== null && citation.end_line !== citation.start_line
        ? `-${citation.end_line}`
        : '';
    return `${citation.path}:${citation.start_line}${end}`;
  }
  return citation.path;
}

/**
 * The list shown under an answer; each entry opens its source. The sources the answer
 * cites (`cited`, the [n] in its text) are listed; the others, which retrieval found but
 * the answer did not use, are folded in a "3 more sources" disclosure (a <details>, so
 * Enter or Space on its summary opens it).
 */
export function renderSources(
  citations: ICitation[],
  open: OpenCitation,
  cited: ReadonlySet<number> = new Set(citations.map(c => c.n))
): HTMLElement {
  const section = element('div', 'jp-RubberDuck-sources');
  section.setAttribute('role', 'group');
  section.setAttribute('aria-label', 'Sources');
  const used = citations.filter(c => cited.has(c.n));
  const rest = citations.filter(c => !cited.has(c.n));
  if (used.length) {
    section.append(element('div', 'jp-RubberDuck-sources-title', 'Sources'));
    section.append(sourceList(used, open));
  }
  if (rest.length) {
    const more = element('details', 'jp-RubberDuck-sources-more');
    const count = `${rest.length} ${used.length ? 'more ' : ''}source${rest.length === 1 ? '' : 's'}`;
    const summary = element(
      'summary',
      'jp-RubberDuck-sources-more-summary',
      count
    );
    summary.title = used.length
      ? 'Also found for this question, not cited in the answer'
      : 'Found for this question; the answer cites none of them';
    more.append(summary, sourceList(rest, open));
    section.append(more);
  }
  return section;
}

function sourceList(citations: ICitation[], open: OpenCitation): HTMLElement {
  const list = element('ol', 'jp-RubberDuck-sources-list');
  for (const citation of citations) {
    const item = element('li', 'jp-RubberDuck-source');
    item.value = citation.n;
    item.dataset.n = String(citation.n);
    const button = element('button', 'jp-RubberDuck-source-open');
    button.type = 'button';
    const where = citationLocation(citation);
    button.append(
      element('span', 'jp-RubberDuck-source-n', `[${citation.n}]`),
      ' ',
      element('span', 'jp-RubberDuck-source-where', where)
    );
    if (citation.title) {
      button.append(
        ' ',
        element('span', 'jp-RubberDuck-source-title', `— ${citation.title}`)
      );
    }
    button.title = `Open ${where}`;
    button.addEventListener('click', () => open(citation));
    item.append(button);
    list.append(item);
  }
  return list;
}

const MARKER = /\[(\d{1,3})\]/g;
// Code shows text as written: a `[1]` there is an index, not a citation.
const SKIP = new Set(['CODE', 'PRE', 'A', 'BUTTON']);

/**
 * Turn each `[n]` in the rendered answer whose n is a known source into a link to it,
 * and return the numbers cited. Works on text nodes, so it never parses model output
 * as HTML.
 */
export function linkCitations(
  root: HTMLElement,
  citations: ICitation[],
  open: OpenCitation
): Set<number> {
  const cited = new Set<number>();
  if (!citations.length) {
    return cited;
  }
  const byNumber = new Map(citations.map(c => [c.n, c]));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: node => {
      for (let p = node.parentElement; p && p !== root; p = p.parentElement) {
        if (SKIP.has(p.tagName)) {
          return NodeFilter.FILTER_REJECT;
        }
      }
      MARKER.lastIndex = 0;
      return MARKER.test(node.textContent ?? '')
        ? NodeFilter.FILTER_ACCEPT
        : NodeFilter.FILTER_REJECT;
    }
  });
  const nodes: Text[] = [];
  while (walker.nextNode()) {
    nodes.push(walker.currentNode as Text);
  }
  for (const node of nodes) {
    const text = node.textContent ?? '';
    const pieces: (string | HTMLElement)[] = [];
    let last = 0;
    MARKER.lastIndex = 0;
    for (let match = MARKER.exec(text); match; match = MARKER.exec(text)) {
      const citation = byNumber.get(Number(match[1]));
      if (!citation) {
        continue;
      }
      cited.add(citation.n);
      pieces.push(text.slice(last, match.index));
      const link = element('a', 'jp-RubberDuck-cite', match[0]);
      link.href = '#';
      link.dataset.n = match[1];
      link.title = `Source ${citation.n}: ${citationLocation(citation)}`;
      link.addEventListener('click', event => {
        event.preventDefault();
        open(citation);
      });
      pieces.push(link);
      last = match.index + match[0].length;
    }
    if (pieces.length) {
      pieces.push(text.slice(last));
      node.replaceWith(...pieces.filter(piece => piece !== ''));
    }
  }
  return cited;
}

interface IEditorLike {
  setCursorPosition(position: { line: number; column: number }): void;
  revealPosition?(position: { line: number; column: number }): void;
  focus?(): void;
}

/**
 * Open the cited file (or reveal it if open) and go to the cited cell or line, through
 * the document manager's own command so no extra dependency is needed.
 */
export async function openCitation(
  commands: CommandRegistry,
  citation: ICitation
): Promise<void> {
  const widget = (await commands.execute('docmanager:open', {
    path: citation.path
  })) as unknown;
  if (!widget || typeof widget !== 'object') {
    return;
  }
  const document = widget as {
    context?: { ready: Promise<void> };
    revealed?: Promise<void>;
    content?: unknown;
  };
  await document.context?.ready;
  await document.revealed;
  if (citation.cell !== null && isNotebook(widget)) {
    const notebook = widget.content;
    const cell = notebook.widgets[citation.cell];
    if (cell) {
      notebook.activeCellIndex = citation.cell;
      await notebook.scrollToCell(cell, 'start');
    }
    return;
  }
  const editor = (document.content as { editor?: IEditorLike } | undefined)
    ?.editor;
  if (citation.start_line !== null && editor?.setCursorPosition) {
    const position = { line: Math.max(0, citation.start_line - 1), column: 0 };
    editor.setCursorPosition(position);
    editor.revealPosition?.(position);
    editor.focus?.();
  }
}

function isNotebook(widget: unknown): widget is NotebookPanel {
  const content = (widget as { content?: unknown }).content as
    { widgets?: unknown; scrollToCell?: unknown } | undefined;
  return (
    Array.isArray(content?.widgets) &&
    typeof content?.scrollToCell === 'function'
  );
}
