/**
 * `@` mentions in the message box, without the DOM: what the text mentions, what the
 * completion list offers for what is being typed, and the text after picking an item.
 *
 * Forms (docs/sidebar.md, "Context"):
 * - `@df`: a kernel variable, described by the kernel (type, shape, columns, dtypes);
 * - `@df:values`: the same with its values (bounded and redacted by the server);
 * - `@cell:4`: the active notebook's 4th cell, counted from 1 as the list shows them;
 * - `@etl.ipynb`, `@src/x.py`: a file of the project, by its path from the server's root
 *   (anything with a `.` or a `/`).
 * An `@` counts only at the start or after a space or an opening bracket, so an e-mail
 * address or a decorator inside pasted code (`x@y`) is not a mention.
 */

export type MentionToken =
  | {
      kind: 'variable';
      name: string;
      values: boolean;
      start: number;
      end: number;
    }
  | { kind: 'cell'; cell: number; start: number; end: number }
  | { kind: 'file'; path: string; start: number; end: number };

/** The text a token stands for, as the chip shows it: "@df", "@cell:4", "@src/x.py". */
export function mentionLabel(token: MentionToken): string {
  switch (token.kind) {
    case 'variable':
      return `@${token.name}${token.values ? ':values' : ''}`;
    case 'cell':
      return `@cell:${token.cell}`;
    case 'file':
      return `@${token.path}`;
  }
}

const MENTION = /(^|[\s([{])@([^\s@]+)/g;
// Sentence punctuation after a mention ("look at @df.") is not part of it.
const TRAILING = /[.,;:!?)\]}'"]+$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const VALUES = /^([A-Za-z_][A-Za-z0-9_]*):values$/;
const CELL = /^cell:([1-9][0-9]{0,6})$/;

function classify(body: string, start: number): MentionToken | null {
  const end = start + 1 + body.length;
  const cell = CELL.exec(body);
  if (cell) {
    return { kind: 'cell', cell: Number(cell[1]), start, end };
  }
  const values = VALUES.exec(body);
  if (values) {
    return { kind: 'variable', name: values[1], values: true, start, end };
  }
  if (IDENTIFIER.test(body)) {
    return { kind: 'variable', name: body, values: false, start, end };
  }
  if (/[./]/.test(body) && !body.endsWith('/')) {
    return { kind: 'file', path: body.replace(/^\.\//, ''), start, end };
  }
  return null;
}

/** Every mention in `text`, in order; `start`/`end` span the `@` and its body. */
export function parseMentions(text: string): MentionToken[] {
  const out: MentionToken[] = [];
  for (const match of text.matchAll(MENTION)) {
    const start = (match.index ?? 0) + match[1].length;
    let body = match[2];
    // "@df:values." keeps ":values"; "@cell:4," drops only the comma.
    const stripped = body.replace(TRAILING, '');
    body = VALUES.test(body) || CELL.test(body) ? body : stripped;
    const token = body ? classify(body, start) : null;
    if (token) {
      out.push(token);
    }
  }
  return out;
}

/** The same mentions once each (the first of each label), as chips show them. */
export function distinctMentions(tokens: MentionToken[]): MentionToken[] {
  const seen = new Set<string>();
  return tokens.filter(token => {
    const label = mentionLabel(token).replace(/:values$/, '');
    if (seen.has(label + token.kind)) {
      return false;
    }
    seen.add(label + token.kind);
    return true;
  });
}

/** `text` without every occurrence of the mention `label`, spaces tidied. */
export function removeMention(text: string, label: string): string {
  const tokens = parseMentions(text).filter(t => mentionLabel(t) === label);
  let out = text;
  for (const token of tokens.reverse()) {
    const before = out.slice(0, token.start);
    const after = out.slice(token.end);
    out =
      before.endsWith(' ') && after.startsWith(' ')
        ? before + after.slice(1)
        : before + after;
  }
  return out;
}

// --- completion ----------------------------------------------------------------------

/** The `@word` the caret is at the end of: its start (the `@`) and what follows it. */
export function typedMention(
  text: string,
  caret: number
): { start: number; query: string } | null {
  const head = text.slice(0, caret);
  const match = /(^|[\s([{])@([^\s@]*)$/.exec(head);
  if (!match) {
    return null;
  }
  const start = (match.index ?? 0) + match[1].length;
  return { start, query: match[2] };
}

export type CompletionKind =
  'variable' | 'cell' | 'file' | 'notebook' | 'folder';

export interface ICompletionItem {
  kind: CompletionKind;
  /** What replaces the `@query`, without the `@`: "df", "cell:4", "src/" */
  insert: string;
  /** The list's main text. */
  label: string;
  /** A hint beside it: the type, the cell's first line, "folder". */
  detail: string;
}

export interface ICompletionSources {
  variables: { name: string; type: string }[];
  /** The active notebook's cells, in order (numbered from 1 here). */
  cells: { type: string; source: string }[];
  /** Paths from the server's root of what the folder being typed holds. */
  files: { path: string; type: 'file' | 'notebook' | 'directory' }[];
  /** Files anywhere in the project found so far (filecrawl.ts), shallow ones first. */
  deepFiles?: readonly {
    path: string;
    type: 'file' | 'notebook' | 'directory';
  }[];
}

export const MAX_COMPLETIONS = 50;

function firstLine(source: string): string {
  const line = source.split('\n').find(l => l.trim()) ?? '';
  return line.length > 60 ? line.slice(0, 59) + '…' : line || '(empty)';
}

// Prefix matches first, then matches anywhere, each in the sources' order.
function rank<T>(items: T[], key: (item: T) => string, query: string): T[] {
  const q = query.toLowerCase();
  const prefix: T[] = [];
  const inside: T[] = [];
  for (const item of items) {
    const text = key(item).toLowerCase();
    if (text.startsWith(q)) {
      prefix.push(item);
    } else if (q && text.includes(q)) {
      inside.push(item);
    }
  }
  return prefix.concat(inside);
}

/** What the list offers for `query` (the text after `@`). */
export function completions(
  query: string,
  sources: ICompletionSources,
  limit = MAX_COMPLETIONS
): ICompletionItem[] {
  const out: ICompletionItem[] = [];
  const cellQuery = /^c(e(l(l(:([0-9]*))?)?)?)?$/i.exec(query);
  const inFolder = query.includes('/');
  if (!inFolder) {
    const variables = rank(sources.variables, v => v.name, query);
    for (const v of variables) {
      out.push({
        kind: 'variable',
        insert: v.name,
        label: v.name,
        detail: v.type
      });
    }
  }
  if (query === '' && sources.cells.length) {
    // One entry for all cells: typing on after "cell:" lists them.
    out.push({
      kind: 'cell',
      insert: 'cell:',
      label: 'cell:N',
      detail: `a cell of this notebook (1-${sources.cells.length})`
    });
  } else if (cellQuery) {
    const digits = cellQuery[5] ?? '';
    sources.cells.forEach((cell, i) => {
      const number = String(i + 1);
      if (number.startsWith(digits)) {
        out.push({
          kind: 'cell',
          insert: `cell:${number}`,
          label: `cell:${number}`,
          detail: `${cell.type}: ${firstLine(cell.source)}`
        });
      }
    });
  }
  // A path is matched by its last part within the folder being typed.
  const slash = query.lastIndexOf('/');
  const folder = slash >= 0 ? query.slice(0, slash + 1) : '';
  const name = query.slice(slash + 1);
  const files = sources.files.filter(f => f.path.startsWith(folder));
  for (const file of rank(files, f => f.path.slice(folder.length), name)) {
    const directory = file.type === 'directory';
    out.push({
      kind: directory
        ? 'folder'
        : file.type === 'notebook'
          ? 'notebook'
          : 'file',
      insert: directory ? `${file.path}/` : file.path,
      label: directory ? `${file.path}/` : file.path,
      detail: directory ? 'folder' : file.type
    });
  }
  // Then files further down, by their name: "@train" offers src/models/train.py. Only
  // once a name is typed: "@" or "@src/" alone would list the whole tree.
  if (name) {
    const listed = new Set(files.map(f => f.path));
    const deeper = (sources.deepFiles ?? []).filter(
      f =>
        f.type !== 'directory' &&
        f.path.startsWith(folder) &&
        f.path.slice(folder.length).includes('/') &&
        !listed.has(f.path)
    );
    const base = (path: string): string =>
      path.slice(path.lastIndexOf('/') + 1);
    for (const file of rank(deeper, f => base(f.path), name)) {
      out.push({
        kind: file.type === 'notebook' ? 'notebook' : 'file',
        insert: file.path,
        label: file.path,
        detail: file.type
      });
    }
  }
  return out.slice(0, limit);
}

/**
 * The text after picking `item` for the `@query` starting at `start`: the mention and a
 * space (none after a folder, whose contents come next), with the caret after it.
 */
export function acceptCompletion(
  text: string,
  caret: number,
  start: number,
  item: ICompletionItem
): { text: string; caret: number } {
  const rest = text.slice(caret).replace(/^[^\s@]*/, '');
  // A folder or "cell:" is a step on the way: no space, the list shows what is inside.
  const folder = /[/:]$/.test(item.insert);
  const head = `${text.slice(0, start)}@${item.insert}${folder ? '' : ' '}`;
  return {
    text: head + (folder ? rest : rest.replace(/^ /, '')),
    caret: head.length
  };
}

/** The folder whose listing completes `query`: "" for the root, "src" for "src/x". */
export function folderOf(query: string): string {
  const slash = query.lastIndexOf('/');
  return slash > 0 ? query.slice(0, slash) : '';
}
