/**
 * The project index's status as the front end knows it, without any DOM: one GET of
 * /rubberduck/api/index at a time, polled every second while indexing and backing off
 * (5 s doubling to 60 s) while nothing changes, so an idle lab costs one request a
 * minute. Views (the status-bar item, the panel) follow `changed`.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

/** One word for the display: the server's `activity`, or `unknown` before it answers. */
export type IndexActivity =
  'unknown' | 'idle' | 'indexing' | 'watching' | 'error' | 'locked';

export interface ISkippedFile {
  path: string;
  reason: string;
  code: string;
}

export interface IIndexReport {
  filesIndexed: number;
  filesUnchanged: number;
  filesRemoved: number;
  chunks: number;
  seconds: number;
  cancelled: boolean;
  skipped: ISkippedFile[];
  skippedTotal: number;
  skippedByReason: Record<string, number>;
  errors: { path: string; reason: string }[];
}

/**
 * How good the index's vectors are (progressive indexing): `full` every chunk has the
 * configured embedder's vectors; `static` some have only the fast static ones; `keywords`
 * some have BM25 terms alone; null without chunks. Searchable in every case.
 */
export type IndexQuality = 'full' | 'static' | 'keywords' | null;

export interface IIndexStatus {
  activity: IndexActivity;
  stopping: boolean;
  /** Files done and to do while indexing, else null. */
  done: number | null;
  total: number | null;
  /** The saved folders to index; [] is the whole project. */
  scope: string[];
  files: number;
  chunks: number;
  error: string | null;
  lastReport: IIndexReport | null;
  /** The index answers searches (it holds chunks), whatever their tier. */
  searchable: boolean;
  quality: IndexQuality;
  /** Share of chunks with the full embedder's vectors while below 1, else null. */
  improving: number | null;
  /** The run's phase: `improving` while the second tier embeds. */
  phase: string | null;
}

/** The REST calls the model makes; index.ts passes ServerConnection-backed ones. */
export interface IIndexBackend {
  get(): Promise<unknown>;
  start(scope?: string[]): Promise<unknown>;
  stop(): Promise<unknown>;
}

/** Timers, injectable so tests step time themselves. */
export interface IScheduler {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realScheduler: IScheduler = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: handle => clearTimeout(handle as ReturnType<typeof setTimeout>)
};

// Why these numbers: a second while indexing keeps the count moving without flooding the
// server; idle polling only catches runs started elsewhere (CLI, another tab, a notice).
export const POLL_INDEXING_MS = 1000;
export const POLL_IDLE_MS = 5000;
export const POLL_IDLE_MAX_MS = 60000;

const ACTIVITIES: ReadonlySet<string> = new Set([
  'idle',
  'indexing',
  'watching',
  'error',
  'locked'
]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number =>
  typeof v === 'number' && Number.isFinite(v) ? v : 0;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function parseReport(raw: unknown): IIndexReport | null {
  if (!isObject(raw)) {
    return null;
  }
  const skipped = Array.isArray(raw.skipped) ? raw.skipped : [];
  const byReason: Record<string, number> = {};
  if (isObject(raw.skipped_by_reason)) {
    for (const [code, count] of Object.entries(raw.skipped_by_reason)) {
      byReason[code] = num(count);
    }
  }
  return {
    filesIndexed: num(raw.files_indexed),
    filesUnchanged: num(raw.files_unchanged),
    filesRemoved: num(raw.files_removed),
    chunks: num(raw.chunks_written),
    seconds: num(raw.seconds),
    cancelled: raw.cancelled === true,
    skipped: skipped.filter(isObject).map(s => ({
      path: str(s.path),
      reason: str(s.reason),
      code: str(s.code) || 'other'
    })),
    skippedTotal: num(raw.skipped_total) || skipped.length,
    skippedByReason: byReason,
    errors: (Array.isArray(raw.errors) ? raw.errors : [])
      .filter(isObject)
      .map(e => ({ path: str(e.path), reason: str(e.reason) }))
  };
}

/** The server's GET body as a status, or null when it is not one. */
export function parseIndexStatus(raw: unknown): IIndexStatus | null {
  if (!isObject(raw)) {
    return null;
  }
  const word = str(raw.activity) || str(raw.state);
  const activity = (ACTIVITIES.has(word) ? word : 'unknown') as IndexActivity;
  const indexing = activity === 'indexing';
  return {
    activity,
    stopping: raw.stopping === true,
    done: indexing ? num(raw.done) : null,
    total: indexing ? num(raw.total) : null,
    scope: Array.isArray(raw.scope)
      ? raw.scope.filter((p): p is string => typeof p === 'string')
      : [],
    files: num(raw.files),
    chunks: num(raw.chunks),
    error: typeof raw.error === 'string' && raw.error ? raw.error : null,
    lastReport: parseReport(raw.last_report),
    searchable: raw.searchable === true,
    quality: QUALITIES.has(str(raw.quality))
      ? (str(raw.quality) as IndexQuality)
      : null,
    improving:
      typeof raw.improving === 'number' && Number.isFinite(raw.improving)
        ? Math.min(1, Math.max(0, raw.improving))
        : null,
    phase:
      indexing && isObject(raw.progress)
        ? str(raw.progress.phase) || null
        : null
  };
}

const QUALITIES: ReadonlySet<string> = new Set(['full', 'static', 'keywords']);

/** "improving 40%": how far the second tier has come, for labels. */
export function improvingText(status: IIndexStatus): string {
  return `improving ${Math.floor(100 * (status.improving ?? 0))}%`;
}

/** Why search is not at full quality yet, for descriptions ('' when it is). */
function qualityNote(status: IIndexStatus): string {
  const share = Math.floor(100 * (status.improving ?? 1));
  switch (status.quality) {
    case 'static':
      return ` Searchable now with fast static vectors and keywords; ${share}% of the chunks have the full model's vectors.`;
    case 'keywords':
      return ` Searchable now by keywords; ${share}% of the chunks have the full model's vectors.`;
    default:
      return '';
  }
}

/** What the status-bar item says: a short label and a sentence for tooltip and aria. */
export function describeStatus(
  status: IIndexStatus | null,
  fetchError: string | null = null
): { label: string; description: string } {
  if (fetchError !== null) {
    return {
      label: 'Index: ?',
      description: `The index status is unavailable: ${fetchError}`
    };
  }
  if (status === null || status.activity === 'unknown') {
    return { label: 'Index', description: 'Index status: checking…' };
  }
  const counts = `${status.files} files, ${status.chunks} chunks`;
  switch (status.activity) {
    case 'indexing': {
      if (status.phase === 'improving' && status.searchable) {
        // The second tier: searchable already, the full model's vectors on their way.
        const verb = status.stopping ? 'stopping' : improvingText(status);
        return {
          label: `Index: searchable · ${verb}`,
          description: `The project index is searchable (${counts}) and improving.${qualityNote(status)}`
        };
      }
      const progress =
        status.total !== null && status.total > 0
          ? `${status.done ?? 0}/${status.total}`
          : 'starting';
      const verb = status.stopping ? 'Stopping' : 'Indexing';
      return {
        label: `${verb} ${progress}`,
        description: `${verb} the project index: ${progress === 'starting' ? 'opening the index' : `${progress} files`}.`
      };
    }
    case 'watching':
      if (status.lastReport?.cancelled === true) {
        return {
          label: `Index: ${status.files} files (stopped)`,
          description: `The last indexing run was stopped before it finished; the index may be incomplete and is watching for changes (${counts}).`
        };
      }
      return {
        label: `Index: ${status.files} files${partialLabel(status)}`,
        description: `The project index is up to date and watching for changes (${counts}).${qualityNote(status)}`
      };
    case 'error':
    case 'locked':
      return {
        label: status.activity === 'locked' ? 'Index locked' : 'Index error',
        description: `Indexing failed: ${status.error ?? 'unknown error'}`
      };
    default:
      return status.files === 0 && status.lastReport === null
        ? {
            label: 'Not indexed',
            // The status bar adds "open the index panel"; the panel itself has the button.
            description: 'This project has no index yet.'
          }
        : status.lastReport?.cancelled === true
          ? {
              // Says so until the next run: a stopped index may lack files.
              label: `Index: ${status.files} files (stopped)`,
              description: `The last indexing run was stopped before it finished; the index may be incomplete (${counts}).`
            }
          : {
              label: `Index: ${status.files} files${partialLabel(status)}`,
              description: `The project index is idle (${counts}).${qualityNote(status)}`
            };
  }
}

/** A run stopped between the tiers leaves some chunks without the full vectors. */
function partialLabel(status: IIndexStatus): string {
  return status.quality === 'static' || status.quality === 'keywords'
    ? ` · ${Math.floor(100 * (status.improving ?? 0))}% full`
    : '';
}

export class IndexStatusModel implements IDisposable {
  constructor(
    private readonly _backend: IIndexBackend,
    private readonly _scheduler: IScheduler = realScheduler
  ) {}

  get status(): IIndexStatus | null {
    return this._status;
  }

  /** Why the last request failed (network, server error), or null. */
  get fetchError(): string | null {
    return this._fetchError;
  }

  /** The delay before the next poll, for tests and the curious. */
  get nextPollMs(): number | null {
    return this._timer === null ? null : this._delay;
  }

  get changed(): ISignal<this, IIndexStatus | null> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Ask the server now; polling continues from the answer. */
  async refresh(): Promise<void> {
    await this._call(() => this._backend.get());
  }

  /** Index `scope` (saved as the folders to index), or the saved scope if omitted. */
  async start(scope?: string[]): Promise<void> {
    this._delay = POLL_INDEXING_MS;
    await this._call(() => this._backend.start(scope), true);
  }

  async stop(): Promise<void> {
    await this._call(() => this._backend.stop(), true);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._unschedule();
    Signal.clearData(this);
  }

  private async _call(
    request: () => Promise<unknown>,
    rethrow = false
  ): Promise<void> {
    if (this._disposed) {
      return;
    }
    this._unschedule();
    try {
      const status = parseIndexStatus(await request());
      this._fetchError = null;
      this._update(status);
    } catch (reason) {
      this._fetchError =
        reason instanceof Error ? reason.message : String(reason);
      this._delay = Math.min(
        Math.max(this._delay * 2, POLL_IDLE_MS),
        POLL_IDLE_MAX_MS
      );
      this._changed.emit(this._status);
      if (rethrow) {
        this._schedule();
        throw reason;
      }
    }
    this._schedule();
  }

  private _update(status: IIndexStatus | null): void {
    const before = JSON.stringify(this._status);
    const after = JSON.stringify(status);
    const active = status?.activity === 'indexing';
    if (active) {
      this._delay = POLL_INDEXING_MS;
    } else if (before !== after) {
      this._delay = POLL_IDLE_MS; // something changed: look again soon
    } else {
      this._delay = Math.min(this._delay * 2, POLL_IDLE_MAX_MS);
    }
    this._status = status;
    if (before !== after) {
      this._changed.emit(status);
    }
  }

  private _schedule(): void {
    if (this._disposed || this._timer !== null) {
      return;
    }
    this._timer = this._scheduler.set(() => {
      this._timer = null;
      void this.refresh();
    }, this._delay);
  }

  private _unschedule(): void {
    if (this._timer !== null) {
      this._scheduler.clear(this._timer);
      this._timer = null;
    }
  }

  private _status: IIndexStatus | null = null;
  private _fetchError: string | null = null;
  private _delay = POLL_IDLE_MS;
  private _timer: unknown = null;
  private _disposed = false;
  private _changed = new Signal<this, IIndexStatus | null>(this);
}
