/**
 * A unified diff drawn as text: one line per span, its kind (added, removed, context,
 * file header) in `data-kind` for the colours, never HTML. Suggestions, code blocks and
 * the cell review show their proposed changes with it, so they read alike.
 */
import type { IDiffLine } from './diff';
import { element } from './dom';

export function diffView(
  lines: readonly IDiffLine[],
  className: string,
  label: string
): HTMLPreElement {
  const pre = element('pre', `jp-RubberDuck-diff ${className}`.trim());
  pre.setAttribute('aria-label', label);
  // Focusable, so a long diff scrolls from the keyboard.
  pre.tabIndex = 0;
  for (const line of lines) {
    const row = element('span', 'jp-RubberDuck-diff-line', line.text + '\n');
    row.dataset.kind = line.kind;
    pre.append(row);
  }
  return pre;
}
