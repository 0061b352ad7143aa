/**
 * The context of one inline completion, from what the front end already has: the text
 * around the cursor, the notebook's earlier cells and the kernel variables last seen.
 * Pure functions, no DOM and no JupyterLab objects, so they are unit tested directly.
 */
import {
  ICompletionCell,
  ICompletionVariable,
  IKernelVariable,
  MAX_COMPLETION_CELL_CHARS,
  MAX_COMPLETION_CELLS
} from '../protocol';

// The server cuts context to its token budget; these only bound the frame. 16k chars
// before the cursor (~4k tokens) is more than a small completion model's window wants.
export const MAX_PREFIX_CHARS = 16_000;
export const MAX_SUFFIX_CHARS = 4_000;
export const MAX_SENT_VARIABLES = 100;
// All earlier cells together: the server fills a budget of completion_context_chars (6,000
// by default) nearest first, so more than a few times that is never read; sending 50 full
// cells (200 kB) on every pause would cost more than it gives, and could pass the
// server's 256 kB frame limit.
export const MAX_CELLS_TOTAL_CHARS = 32_000;

export interface ICellLike {
  cell_type: string;
  source: string;
}

/**
 * The cells before `activeIndex`, nearest first, at most MAX_COMPLETION_CELLS, code and
 * markdown only (raw cells are not the program), empty ones skipped, MAX_CELLS_TOTAL_CHARS
 * in all. A long cell keeps its end, cut at a line start: the nearest cell's last lines
 * lead into the cursor, and the server, short of room, keeps a cell's last lines too.
 */
export function earlierCells(
  cells: readonly ICellLike[],
  activeIndex: number
): ICompletionCell[] {
  const out: ICompletionCell[] = [];
  let total = 0;
  for (
    let i = Math.min(activeIndex, cells.length) - 1;
    i >= 0 &&
    out.length < MAX_COMPLETION_CELLS &&
    total < MAX_CELLS_TOTAL_CHARS;
    i--
  ) {
    const cell = cells[i];
    if (
      (cell.cell_type !== 'code' && cell.cell_type !== 'markdown') ||
      !cell.source.trim()
    ) {
      continue;
    }
    const source = tail(
      cell.source,
      Math.min(MAX_COMPLETION_CELL_CHARS, MAX_CELLS_TOTAL_CHARS - total)
    );
    total += source.length;
    out.push({ cell_type: cell.cell_type, source });
  }
  return out;
}

/** The last `max` characters of `text`, from a line start when one is in them. */
function tail(text: string, max: number): string {
  if (text.length <= max) {
    return text;
  }
  const cut = text.slice(text.length - max);
  const line = cut.indexOf('\n');
  return line >= 0 && line < cut.length - 1 ? cut.slice(line + 1) : cut;
}

/**
 * The text before and after the cursor. `offset` counts code points, as JupyterLab's
 * completer request does (Text.jsIndexToCharIndex), not UTF-16 units.
 */
export function splitAtCursor(
  text: string,
  offset: number
): { prefix: string; suffix: string } {
  const at = jsIndex(text, offset);
  let prefix = text.slice(0, at);
  let suffix = text.slice(at);
  if (prefix.length > MAX_PREFIX_CHARS) {
    prefix = prefix.slice(prefix.length - MAX_PREFIX_CHARS);
  }
  if (suffix.length > MAX_SUFFIX_CHARS) {
    suffix = suffix.slice(0, MAX_SUFFIX_CHARS);
  }
  return { prefix, suffix };
}

function jsIndex(text: string, codePoints: number): number {
  let units = 0;
  let seen = 0;
  while (seen < codePoints && units < text.length) {
    const code = text.charCodeAt(units);
    units += code >= 0xd800 && code <= 0xdbff ? 2 : 1;
    seen += 1;
  }
  return Math.min(units, text.length);
}

/** The rest of the cursor's line. */
export function restOfLine(suffix: string): string {
  const end = suffix.indexOf('\n');
  return end === -1 ? suffix : suffix.slice(0, end);
}

/**
 * Whether to complete with this text after the cursor on its line: nothing, or only
 * what an editor closes by itself (brackets, quotes, a colon or comma). Completing in
 * the middle of real code would write over what the user means to keep.
 */
export function canCompleteBefore(suffix: string): boolean {
  return /^[\s)\]}'"`:;,]*$/.test(restOfLine(suffix));
}

/** A line of its own can take a block; before closing brackets only the line's end. */
export function wantsMultiline(suffix: string): boolean {
  return restOfLine(suffix).trim() === '';
}

/** At most `maxLines` lines (0: no limit). */
export function clampLines(text: string, maxLines: number): string {
  if (maxLines <= 0) {
    return text;
  }
  const lines = text.split('\n');
  return lines.length <= maxLines ? text : lines.slice(0, maxLines).join('\n');
}

/**
 * The sidebar's variable list (kernelvars.ts) as completion context: names, types and
 * shapes only. kernelvars puts a shape at the start of its summary ("shape (100, 3);
 * columns ..."): that is the part kept; values never go.
 */
export function completionVariables(
  variables: readonly IKernelVariable[] | null
): ICompletionVariable[] {
  return (variables ?? []).slice(0, MAX_SENT_VARIABLES).map(v => {
    const shape = /(?:^|; )shape (\([^)]*\))/.exec(v.summary);
    return { name: v.name, type: v.type, shape: shape ? shape[1] : '' };
  });
}

/**
 * The file type of an editor for the `inlineCompletionFileTypes` setting: 'notebook'
 * for notebook cells, else the language of a file ('python' for .py), else its
 * extension without the dot.
 */
export function fileTypeOf(
  isNotebook: boolean,
  path: string,
  mimeType: string | undefined
): string {
  if (isNotebook) {
    return 'notebook';
  }
  const language = languageOf(path, mimeType);
  if (language) {
    return language;
  }
  const dot = path.lastIndexOf('.');
  return dot > path.lastIndexOf('/') ? path.slice(dot + 1).toLowerCase() : '';
}

/** The language the server is told, or '' when not known. */
export function languageOf(path: string, mimeType: string | undefined): string {
  const mime = (mimeType ?? '').toLowerCase();
  if (mime === 'text/x-python' || mime === 'text/x-ipython') {
    return 'python';
  }
  if (/\.pyi?$/i.test(path)) {
    return 'python';
  }
  return '';
}
