/**
 * Marks a finding's lines in a cell's CodeMirror 6 editor: a line decoration whose class
 * carries the severity (style/cellreview.css colours it with theme variables only). The
 * field is injected once per editor; later calls only dispatch an effect.
 */
import type { CodeEditor } from '@jupyterlab/codeeditor';
import type { CodeMirrorEditor } from '@jupyterlab/codemirror';
import {
  RangeSetBuilder,
  StateEffect,
  StateField,
  type EditorState
} from '@codemirror/state';
import { Decoration, DecorationSet, EditorView } from '@codemirror/view';

import type { Severity } from './model';

export interface ILineMark {
  line: number;
  severity: Severity;
}

const setMarks = StateEffect.define<{ marks: ILineMark[]; stale: boolean }>();

function build(
  state: EditorState,
  marks: ILineMark[],
  stale: boolean
): DecorationSet {
  // One decoration a line, the most severe wins; CodeMirror wants them in order.
  const rank: Record<Severity, number> = { error: 0, warning: 1, info: 2 };
  const byLine = new Map<number, Severity>();
  for (const mark of marks) {
    const had = byLine.get(mark.line);
    if (had === undefined || rank[mark.severity] < rank[had]) {
      byLine.set(mark.line, mark.severity);
    }
  }
  const builder = new RangeSetBuilder<Decoration>();
  for (const line of [...byLine.keys()].sort((a, b) => a - b)) {
    if (line < 1 || line > state.doc.lines) {
      continue;
    }
    const severity = byLine.get(line)!;
    const from = state.doc.line(line).from;
    builder.add(
      from,
      from,
      Decoration.line({
        class: `jp-RubberDuck-findingLine jp-mod-${severity}${stale ? ' jp-mod-stale' : ''}`,
        attributes: { 'data-rubberduck-severity': severity }
      })
    );
  }
  return builder.finish();
}

const marksField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(value, transaction) {
    let next = value.map(transaction.changes);
    for (const effect of transaction.effects) {
      if (effect.is(setMarks)) {
        next = build(transaction.state, effect.value.marks, effect.value.stale);
      }
    }
    return next;
  },
  provide: field => EditorView.decorations.from(field)
});

const installed = new WeakSet<EditorView>();

/** Shows `marks` in the editor (an empty list clears them). */
export function markLines(
  editor: CodeEditor.IEditor | null | undefined,
  marks: ILineMark[],
  stale: boolean
): void {
  const view = (editor as CodeMirrorEditor | null | undefined)?.editor;
  if (!view || !(view instanceof EditorView)) {
    return;
  }
  // A cell's edit reaches us (stale) from inside CodeMirror's own update, where a
  // dispatch is refused: mark once that update is done.
  queueMicrotask(() => {
    if (!installed.has(view)) {
      installed.add(view);
      view.dispatch({ effects: StateEffect.appendConfig.of(marksField) });
    }
    view.dispatch({ effects: setMarks.of({ marks, stale }) });
  });
}
