/**
 * A unified line diff, computed in the browser from a suggestion's `original` and
 * `proposed` text. The server sends a diff too, but Python's difflib glues the last
 * lines together when a text does not end with a newline (a cell never does), so the
 * sidebar draws its own and keeps only the server's file header.
 */

export type DiffKind = 'file' | 'hunk' | 'context' | 'add' | 'del';

export interface IDiffLine {
  kind: DiffKind;
  /** The line as a unified diff shows it, prefix included, no newline. */
  text: string;
}

const CONTEXT = 3;
// Past this many cells of the LCS table the diff is not worth the browser's time.
const MAX_TABLE = 4_000_000;

function lines(text: string): string[] {
  if (!text) {
    return [];
  }
  const out = text.split('\n');
  if (out[out.length - 1] === '') {
    out.pop();
  }
  return out;
}

type Op = { kind: 'equal' | 'del' | 'add'; text: string };

/** Edit script by longest common subsequence; null when the texts are too large. */
function editScript(a: string[], b: string[]): Op[] | null {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) {
    start++;
  }
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const n = endA - start;
  const m = endB - start;
  if ((n + 1) * (m + 1) > MAX_TABLE) {
    return null;
  }
  // lcs[i][j]: length of the LCS of a[start+i..endA) and b[start+j..endB).
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[start + i] === b[start + j]
          ? lcs[(i + 1) * width + j + 1] + 1
          : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
    }
  }
  const ops: Op[] = a.slice(0, start).map(text => ({ kind: 'equal', text }));
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[start + i] === b[start + j]) {
      ops.push({ kind: 'equal', text: a[start + i] });
      i++;
      j++;
    } else if (
      i < n &&
      (j === m || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])
    ) {
      // Removals before additions, as diff(1) prints them.
      ops.push({ kind: 'del', text: a[start + i] });
      i++;
    } else {
      ops.push({ kind: 'add', text: b[start + j] });
      j++;
    }
  }
  for (let k = endA; k < a.length; k++) {
    ops.push({ kind: 'equal', text: a[k] });
  }
  return ops;
}

/**
 * The unified diff of `original` to `proposed` with three lines of context, headed by
 * `header` (the "--- a/..." and "+++ b/..." lines). Null when too large to compute.
 */
export function unifiedDiff(
  original: string,
  proposed: string,
  header: string[]
): IDiffLine[] | null {
  const ops = editScript(lines(original), lines(proposed));
  if (ops === null) {
    return null;
  }
  const out: IDiffLine[] = header.map(text => ({ kind: 'file', text }));
  const changed = ops
    .map((op, index) => (op.kind === 'equal' ? -1 : index))
    .filter(index => index >= 0);
  if (!changed.length) {
    return out;
  }
  // Hunks: runs of changes whose context windows touch.
  const hunks: [number, number][] = [];
  for (const index of changed) {
    const from = Math.max(0, index - CONTEXT);
    const to = Math.min(ops.length, index + CONTEXT + 1);
    const last = hunks[hunks.length - 1];
    if (last && from <= last[1]) {
      last[1] = Math.max(last[1], to);
    } else {
      hunks.push([from, to]);
    }
  }
  // Line numbers (1-based) in each text where op k starts.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  let oldLine = 1;
  let newLine = 1;
  for (const op of ops) {
    oldAt.push(oldLine);
    newAt.push(newLine);
    if (op.kind !== 'add') {
      oldLine++;
    }
    if (op.kind !== 'del') {
      newLine++;
    }
  }
  for (const [from, to] of hunks) {
    const slice = ops.slice(from, to);
    const oldCount = slice.filter(op => op.kind !== 'add').length;
    const newCount = slice.filter(op => op.kind !== 'del').length;
    // As in diff(1): an empty side is numbered by the line before it.
    const oldStart = oldCount ? oldAt[from] : oldAt[from] - 1;
    const newStart = newCount ? newAt[from] : newAt[from] - 1;
    out.push({
      kind: 'hunk',
      text: `@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`
    });
    for (const op of slice) {
      const prefix = op.kind === 'add' ? '+' : op.kind === 'del' ? '-' : ' ';
      out.push({
        kind: op.kind === 'equal' ? 'context' : op.kind,
        text: prefix + op.text
      });
    }
  }
  return out;
}

/** The server's diff split into lines and classified, as a fallback. */
export function parseUnifiedDiff(diff: string): IDiffLine[] {
  return diff
    .replace(/\n$/, '')
    .split('\n')
    .map(text => {
      let kind: DiffKind = 'context';
      if (text.startsWith('+++') || text.startsWith('---')) {
        kind = 'file';
      } else if (text.startsWith('@@')) {
        kind = 'hunk';
      } else if (text.startsWith('+')) {
        kind = 'add';
      } else if (text.startsWith('-')) {
        kind = 'del';
      }
      return { kind, text };
    });
}
