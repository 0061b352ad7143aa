/**
 * The project's files further down than the folder being typed, for the `@` list: a
 * breadth-first walk of the Jupyter contents API (the server offers no file list of its
 * own, and the index may not exist), started the first time a name is typed after `@`
 * and never awaited by typing. What it has found shows at once and grows as it goes.
 *
 * Bounded: at most MAX_FOLDERS listings and MAX_FILES files, two requests at a time, so
 * a huge tree costs the server a few seconds of listings, not minutes. Folders that hold
 * tools rather than the user's code (node_modules, virtual environments, caches) are not
 * entered; hidden ones are left out by the listing itself. A walk older than TTL_MS is
 * done again on the next use, keeping the old files until the new walk is complete.
 */

export interface IFileEntry {
  /** From the server's root. */
  path: string;
  type: 'file' | 'notebook' | 'directory';
}

/** The folder's entries (paths from the root); [] when it cannot be listed. */
export type ListFolder = (folder: string) => Promise<IFileEntry[]>;

// About a minute of a typical project's listings at ~10 ms each, and far more files than a
// completion list can show; past these, prefix typing (`@src/`) still reaches everything.
export const MAX_FOLDERS = 300;
export const MAX_FILES = 5_000;
const CONCURRENCY = 2;
// Files come and go while one works; a minute-old walk is still a good guess for naming.
export const TTL_MS = 60_000;
// Tell the list after this many folders: often enough to feel live, not per request.
const PROGRESS_EVERY = 10;
const SKIPPED = new Set([
  'node_modules',
  '__pycache__',
  'site-packages',
  'venv'
]);

export class FileCrawl {
  constructor(
    private readonly _list: ListFolder,
    private readonly _now: () => number = Date.now
  ) {}

  /** The files (and notebooks) found, in the walk's order: shallow ones first. */
  get files(): readonly IFileEntry[] {
    return this._files;
  }

  get running(): boolean {
    return this._running;
  }

  /** The last walk stopped at a limit: some files are not in `files`. */
  get truncated(): boolean {
    return this._truncated;
  }

  /**
   * Walk the tree unless a walk is running or a fresh one is done; `progress` is told
   * whenever `files` grew, and once at the end.
   */
  start(progress: () => void): void {
    if (
      this._running ||
      (this._doneAt !== null && this._now() - this._doneAt < TTL_MS)
    ) {
      return;
    }
    void this._walk(progress);
  }

  /** Stop the walk under way; what it found so far is dropped. */
  cancel(): void {
    this._generation += 1;
    this._running = false;
  }

  private async _walk(progress: () => void): Promise<void> {
    const generation = ++this._generation;
    this._running = true;
    // A first walk shows its files as they come; a repeat swaps them in at the end.
    const live = this._doneAt === null;
    const found: IFileEntry[] = [];
    const queue = [''];
    let listed = 0;
    let truncated = false;
    const current = (): boolean => generation === this._generation;
    const worker = async (): Promise<void> => {
      while (queue.length && current()) {
        if (listed >= MAX_FOLDERS) {
          truncated = true;
          return;
        }
        const folder = queue.shift() as string;
        listed += 1;
        let entries: IFileEntry[];
        try {
          entries = await this._list(folder);
        } catch {
          entries = []; // an unreadable folder costs only itself
        }
        if (!current()) {
          return;
        }
        for (const entry of entries) {
          if (entry.type === 'directory') {
            const name = entry.path.split('/').pop() ?? '';
            if (!SKIPPED.has(name)) {
              queue.push(entry.path);
            }
          } else if (found.length < MAX_FILES) {
            found.push(entry);
          } else {
            truncated = true;
          }
        }
        if (live && listed % PROGRESS_EVERY === 0) {
          this._files = found.slice();
          progress();
        }
      }
    };
    // Workers stop when the queue is empty; a folder listed by one may refill it, so
    // run rounds until nothing is left.
    while (queue.length && current() && !truncated) {
      await Promise.all(
        Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker)
      );
    }
    if (!current()) {
      return;
    }
    this._files = found;
    this._truncated = truncated || queue.length > 0;
    this._running = false;
    this._doneAt = this._now();
    progress();
  }

  private _files: readonly IFileEntry[] = [];
  private _running = false;
  private _truncated = false;
  private _doneAt: number | null = null;
  private _generation = 0;
}
