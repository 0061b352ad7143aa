/**
 * The cell review's state, apart from any view: per cell id, the findings of the last
 * review, the source and its hash at that time, whether the cell changed since (stale),
 * and the model's streamed review. Views listen to `changed` and draw; unit tests drive
 * this with no DOM (labextension/test/cellreview.test.ts).
 */
import { ISignal, Signal } from '@lumino/signaling';

export type Severity = 'error' | 'warning' | 'info';

export const SEVERITIES: readonly Severity[] = ['error', 'warning', 'info'];

/** ICellFinding.source of a finding an `analysis_augment` plugin hook made. */
export const PLUGIN_SOURCE = 'plugin';

export interface ICellFinding {
  /** "syntax", "ruff", "ast", or PLUGIN_SOURCE ("plugin") for a plugin's finding. */
  source: string;
  /** The plugin that made it (e.g. "pandas-review"); only with source "plugin". */
  plugin?: string;
  /** The rule: F821, RD103, NB101... */
  code: string;
  message: string;
  /** 1-based, in the cell. */
  line: number;
  col: number;
  endLine: number | null;
  severity: Severity;
  /** A human-readable remedy. */
  fix: string | null;
  /** The whole cell with the fix applied; the server offers it only when it parses. */
  replacement: string | null;
  /** "cell" from the cell's own review, "notebook" from the cross-cell analysis. */
  scope: 'cell' | 'notebook';
  /** For a cross-cell finding, the other cell involved (its index in the notebook). */
  relatedCell: number | null;
}

export type ModelState = 'idle' | 'streaming' | 'done' | 'error';

export interface ICellReviewState {
  readonly cellId: string;
  /** The cell's source when it was reviewed, and its content hash (hash.ts). */
  readonly source: string;
  readonly sourceHash: string;
  readonly findings: readonly ICellFinding[];
  /** True once the cell's source differs from `source`: the findings are history. */
  readonly stale: boolean;
  readonly modelText: string;
  readonly modelState: ModelState;
  readonly modelError: string;
}

function isSeverity(value: unknown): value is Severity {
  return SEVERITIES.includes(value as Severity);
}

function integerOr<T>(
  value: unknown,
  fallback: T,
  min = -Infinity
): number | T {
  return typeof value === 'number' && Number.isInteger(value) && value >= min
    ? value
    : fallback;
}

/** One finding of the server's JSON, checked; null when it is not one. */
export function parseFinding(
  raw: unknown,
  scope: 'cell' | 'notebook' = 'cell'
): ICellFinding | null {
  if (typeof raw !== 'object' || raw === null) {
    return null;
  }
  const obj = raw as Record<string, unknown>;
  if (typeof obj.code !== 'string' || typeof obj.message !== 'string') {
    return null;
  }
  const finding: ICellFinding = {
    source: typeof obj.source === 'string' ? obj.source : '',
    code: obj.code,
    message: obj.message,
    line: integerOr(obj.line, 1, 1),
    col: integerOr(obj.col, 1, 1),
    endLine: integerOr(obj.end_line, null),
    severity: isSeverity(obj.severity) ? obj.severity : 'warning',
    fix: typeof obj.fix === 'string' && obj.fix ? obj.fix : null,
    replacement: typeof obj.replacement === 'string' ? obj.replacement : null,
    scope,
    relatedCell: integerOr(obj.related_cell, null)
  };
  if (
    finding.source === PLUGIN_SOURCE &&
    typeof obj.plugin === 'string' &&
    obj.plugin
  ) {
    finding.plugin = obj.plugin;
  }
  return finding;
}

/**
 * Who made a finding, when it is worth saying: the plugin's name for a plugin's finding
 * ("plugin" if the server named none), null for RubberDuck's own checks.
 */
export function findingOrigin(finding: ICellFinding): string | null {
  if (finding.source !== PLUGIN_SOURCE) {
    return null;
  }
  return finding.plugin ?? PLUGIN_SOURCE;
}

export interface IStaticReview {
  sourceHash: string;
  findings: ICellFinding[];
}

/** POST /rubberduck/api/review/cell's answer, checked. */
export function parseCellReview(raw: unknown): IStaticReview {
  const obj = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<
    string,
    unknown
  >;
  const findings = Array.isArray(obj.findings) ? obj.findings : [];
  return {
    sourceHash: typeof obj.source_hash === 'string' ? obj.source_hash : '',
    findings: findings
      .map(item => parseFinding(item))
      .filter((f): f is ICellFinding => f !== null)
  };
}

/** A cross-cell finding and the index (in the notebook) of the cell it is on. */
export interface ICrossCellFinding {
  cell: number;
  finding: ICellFinding;
}

/** POST /review/notebook's `findings`, checked: each on its cell, scope "notebook". */
export function parseCrossCellFindings(raw: unknown): ICrossCellFinding[] {
  const out: ICrossCellFinding[] = [];
  for (const item of Array.isArray(raw) ? raw : []) {
    const finding = parseFinding(item, 'notebook');
    const cell = integerOr((item as { cell?: unknown }).cell, null, 0);
    if (finding && cell !== null) {
      out.push({ cell, finding });
    }
  }
  return out;
}

/** A slice of the notebook's static pass: each cell's review, and the cross-cell findings. */
export interface INotebookStaticReview {
  /** In the order reviewed; `index` is the cell's index as the request sent it. */
  cells: { index: number; review: IStaticReview }[];
  /** Empty unless the request asked for them (`cross_cell`). */
  crossCell: ICrossCellFinding[];
}

/**
 * POST /review/notebook's answer to a request with `"static"`, checked: each `static`
 * entry has the shape of POST /review/cell's answer (plus its `index`), so it goes
 * through the same parser as a single cell's review.
 */
export function parseNotebookStaticReview(raw: unknown): INotebookStaticReview {
  const obj = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<
    string,
    unknown
  >;
  const cells: INotebookStaticReview['cells'] = [];
  for (const entry of Array.isArray(obj.static) ? obj.static : []) {
    const index = integerOr((entry as { index?: unknown })?.index, null, 0);
    if (index !== null) {
      cells.push({ index, review: parseCellReview(entry) });
    }
  }
  return { cells, crossCell: parseCrossCellFindings(obj.findings) };
}

/** "2 errors, 1 warning": the severities present, most severe first; '' for none. */
export function severityCountsText(findings: Iterable<ICellFinding>): string {
  const counts = countBySeverity(findings);
  return SEVERITIES.filter(s => counts[s])
    .map(s => `${counts[s]} ${s}${counts[s] > 1 ? 's' : ''}`)
    .join(', ');
}

/** The findings' count per severity. */
export function countBySeverity(
  findings: Iterable<ICellFinding>
): Record<Severity, number> {
  const counts: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const finding of findings) {
    counts[finding.severity] += 1;
  }
  return counts;
}

export class CellReviewModel {
  /** Emits the id of the cell whose review changed. */
  get changed(): ISignal<CellReviewModel, string> {
    return this._changed;
  }

  get(cellId: string): ICellReviewState | undefined {
    return this._reviews.get(cellId);
  }

  cellIds(): string[] {
    return [...this._reviews.keys()];
  }

  /**
   * The cell's static findings, reviewed from `source` (whose hash the server sent).
   * Replaces what the cell had, except the notebook's cross-cell findings when they
   * were made from this same source.
   */
  setStatic(
    cellId: string,
    source: string,
    sourceHash: string,
    findings: ICellFinding[]
  ): void {
    // A new static review starts the cell's review over: the model's goes too.
    this._replaceScope(cellId, source, sourceHash, 'cell', findings, false);
  }

  /** Cross-cell findings for a cell, replacing its earlier ones of the notebook. */
  setNotebookFindings(
    cellId: string,
    source: string,
    sourceHash: string,
    findings: ICellFinding[]
  ): void {
    this._replaceScope(cellId, source, sourceHash, 'notebook', findings, true);
  }

  /** The cell's text now: its review goes stale once it differs from what was reviewed. */
  sourceChanged(cellId: string, source: string): void {
    const review = this._reviews.get(cellId);
    if (!review) {
      return;
    }
    const stale = source !== review.source;
    if (stale !== review.stale) {
      this._set({ ...review, stale });
    }
  }

  modelStarted(cellId: string): void {
    this._patch(cellId, {
      modelText: '',
      modelState: 'streaming',
      modelError: ''
    });
  }

  modelChunk(cellId: string, text: string): void {
    const review = this._reviews.get(cellId);
    if (review && review.modelState === 'streaming') {
      this._set({ ...review, modelText: review.modelText + text });
    }
  }

  modelEnded(cellId: string, error = ''): void {
    this._patch(cellId, {
      modelState: error ? 'error' : 'done',
      modelError: error
    });
  }

  /**
   * Whether `finding`'s fix may land on the cell whose text is now `currentHash`: it has
   * a change, the review is not stale, and the cell is still the text that was reviewed.
   */
  canAccept(
    cellId: string,
    finding: ICellFinding,
    currentHash: string
  ): boolean {
    const review = this._reviews.get(cellId);
    return (
      !!review &&
      !review.stale &&
      finding.replacement !== null &&
      review.findings.includes(finding) &&
      review.sourceHash !== '' &&
      review.sourceHash === currentHash
    );
  }

  clear(cellId: string): void {
    if (this._reviews.delete(cellId)) {
      this._changed.emit(cellId);
    }
  }

  /**
   * The cell's findings of `scope` replaced by `findings`; the other scope's stay while
   * they were made from this same source (and, with `keepModel`, the model's review).
   * The cell's own findings come first, then the notebook's.
   */
  private _replaceScope(
    cellId: string,
    source: string,
    sourceHash: string,
    scope: ICellFinding['scope'],
    findings: ICellFinding[],
    keepModel: boolean
  ): void {
    const previous = this._reviews.get(cellId);
    const same = previous !== undefined && previous.source === source;
    const others = same ? previous.findings.filter(f => f.scope !== scope) : [];
    // The same objects where the scope already fits: canAccept knows a finding by identity.
    const mine = findings.map(f => (f.scope === scope ? f : { ...f, scope }));
    this._set({
      cellId,
      source,
      sourceHash,
      findings: scope === 'cell' ? [...mine, ...others] : [...others, ...mine],
      stale: false,
      modelText: keepModel && same ? previous.modelText : '',
      modelState: keepModel && same ? previous.modelState : 'idle',
      modelError: ''
    });
  }

  private _patch(cellId: string, patch: Partial<ICellReviewState>): void {
    const review = this._reviews.get(cellId);
    if (review) {
      this._set({ ...review, ...patch });
    }
  }

  private _set(review: ICellReviewState): void {
    this._reviews.set(review.cellId, review);
    this._changed.emit(review.cellId);
  }

  private _reviews = new Map<string, ICellReviewState>();
  private _changed = new Signal<CellReviewModel, string>(this);
}

export interface IProgress {
  done: number;
  total: number;
}

/**
 * A notebook's review, item after item (a cell, or a slice of cells): `progress` after
 * each, counted in cells. `cancel()` stops before the next item starts and aborts the
 * one under way through the signal it was given (one that ignores the signal finishes;
 * either way nothing after it is sent).
 */
export class NotebookReviewRun<T> {
  /** `_size(item)`: the cells `item` holds (1 by default; a slice holds more). */
  constructor(
    private readonly _items: readonly T[],
    private readonly _reviewOne: (
      item: T,
      signal: AbortSignal
    ) => Promise<void>,
    private readonly _size: (item: T) => number = () => 1
  ) {
    this._total = _items.reduce((sum, item) => sum + _size(item), 0);
  }

  get progress(): ISignal<NotebookReviewRun<T>, IProgress> {
    return this._progress;
  }

  get cancelled(): boolean {
    return this._cancelled;
  }

  /** Cells reviewed so far: the sizes of the items that finished. */
  get done(): number {
    return this._done;
  }

  /** Cells in all: the sum of the items' sizes. */
  get total(): number {
    return this._total;
  }

  cancel(): void {
    this._cancelled = true;
    this._abort.abort();
  }

  /** Resolves with the number of cells reviewed; true `cancelled` says it stopped early. */
  async run(): Promise<number> {
    this._progress.emit({ done: 0, total: this.total });
    for (const item of this._items) {
      if (this._cancelled) {
        break;
      }
      try {
        await this._reviewOne(item, this._abort.signal);
      } catch (error) {
        // An aborted request rejects (as a network error, through rubberduckRequest):
        // after a cancel that is the cancel itself, not a failure to show.
        if (this._cancelled) {
          break;
        }
        throw error;
      }
      this._done += this._size(item);
      this._progress.emit({ done: this._done, total: this.total });
    }
    return this._done;
  }

  private _done = 0;
  private readonly _total: number;
  private _cancelled = false;
  private readonly _abort = new AbortController();
  private _progress = new Signal<NotebookReviewRun<T>, IProgress>(this);
}

/** Newline-delimited JSON, as it arrives: complete lines out, the rest kept. */
export class NdjsonSplitter {
  push(text: string): unknown[] {
    this._buffer += text;
    const lines = this._buffer.split('\n');
    this._buffer = lines.pop() ?? '';
    return lines.filter(line => line.trim()).map(line => JSON.parse(line));
  }

  flush(): unknown[] {
    const rest = this._buffer.trim();
    this._buffer = '';
    return rest ? [JSON.parse(rest)] : [];
  }

  private _buffer = '';
}
