/**
 * Where a suggestion lands and how it reads, without a DOM: suggestion.ts applies and
 * draws what this decides, and unit tests check it directly
 * (labextension/test/placement.test.ts).
 *
 * "replace" rewrites the target cell, which must still hash to the suggestion's
 * base_hash. The insert modes add a cell below the target and leave the target as it
 * is, so its hash is not checked: "insert_after" a code cell, "insert_markdown_after" a
 * Markdown cell. "delete" removes the target cell, which must still hash to base_hash
 * (the user approved removing what they saw). Either way the target must still be there
 * and must not change while the server records the apply.
 */
import { ISuggestion, SuggestionMode } from './protocol';

export type CellKind = 'code' | 'markdown';

export type Placement =
  | { kind: 'replace' }
  | { kind: 'insert'; cellType: CellKind }
  | { kind: 'delete' };

/** What `mode` does to a notebook; null for a mode this version does not know. */
export function placement(mode: string): Placement | null {
  switch (mode) {
    case SuggestionMode.REPLACE:
      return { kind: 'replace' };
    case SuggestionMode.INSERT_AFTER:
      return { kind: 'insert', cellType: 'code' };
    case SuggestionMode.INSERT_MARKDOWN_AFTER:
      return { kind: 'insert', cellType: 'markdown' };
    case SuggestionMode.DELETE:
      return { kind: 'delete' };
    default:
      return null;
  }
}

/** Whether applying must find the target's source as it was (its base_hash). */
export function checksBaseHash(place: Placement): boolean {
  return place.kind === 'replace' || place.kind === 'delete';
}

/**
 * The two texts the diff runs between. An inserted cell replaces nothing: its diff is
 * all additions, whatever `original` (the target's text, kept for context) says.
 */
export function diffTexts(suggestion: ISuggestion): {
  from: string;
  to: string;
} {
  const place = placement(suggestion.mode);
  return {
    from: place?.kind === 'insert' ? '' : suggestion.original,
    // A removed cell's diff is all removals, whatever `proposed` holds.
    to: place?.kind === 'delete' ? '' : suggestion.proposed
  };
}

/**
 * Where the change goes, e.g. "a.ipynb, a new Markdown cell below cell 3". Cells are
 * counted from 1, as JupyterLab's status bar and the agent count them (the target's
 * cell_index is 0-based).
 */
export function targetLabel(suggestion: ISuggestion): string {
  const { path, cell_index: at } = suggestion.target;
  const where = path ?? 'the notebook';
  if (at === null) {
    return where;
  }
  const index = at + 1;
  const place = placement(suggestion.mode);
  if (place?.kind === 'insert') {
    return place.cellType === 'markdown'
      ? `${where}, a new Markdown cell below cell ${index}`
      : `${where}, new cell after cell ${index}`;
  }
  if (place?.kind === 'delete') {
    return `${where}, remove cell ${index}`;
  }
  return `${where}, cell ${index}`;
}

/** The Apply button's accessible name. */
export function applyLabel(suggestion: ISuggestion): string {
  const place = placement(suggestion.mode);
  if (place?.kind === 'insert') {
    return place.cellType === 'markdown'
      ? `Insert this text as a new Markdown cell (${targetLabel(suggestion)})`
      : `Insert this code as a new cell (${targetLabel(suggestion)})`;
  }
  if (place?.kind === 'delete') {
    return `Remove the cell (${targetLabel(suggestion)})`;
  }
  return `Apply this change to ${targetLabel(suggestion)}`;
}

/** The diff's accessible name: a Markdown cell's diff is its source, not rendered. */
export function diffLabel(suggestion: ISuggestion): string {
  const place = placement(suggestion.mode);
  if (place?.kind === 'insert') {
    return place.cellType === 'markdown'
      ? 'Proposed new Markdown cell, as Markdown source (unified diff)'
      : 'Proposed new code cell (unified diff)';
  }
  if (place?.kind === 'delete') {
    return 'Proposed removal of the cell, all its lines removed (unified diff)';
  }
  return 'Proposed change (unified diff)';
}
