/**
 * What the browser remembers per Jupyter server: the conversation the sidebar was in
 * (restored after a reload) and each notebook's conversation (where "Fix this error"
 * in that notebook goes). Storage may be disabled or full; then nothing is remembered
 * and the sidebar starts a new conversation instead.
 */
import type { IConversationSummary } from './protocol';

type StorageLike = Pick<Storage, 'getItem' | 'setItem'>;

function browserStorage(): StorageLike | null {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled by the browser's settings
  }
}

export class ConversationMemory {
  /**
   * `baseUrl` keys the entries, so two servers in one browser keep theirs apart;
   * `storage` is the browser's local storage unless a test hands another.
   */
  constructor(baseUrl: string, storage?: StorageLike | null) {
    this._storage = storage !== undefined ? storage : browserStorage();
    this._currentKey = `rubberduck:conversation:${baseUrl}`;
    this._notebookKey = `rubberduck:notebook-conversations:${baseUrl}`;
  }

  /** The conversation the sidebar was in, null if none is remembered. */
  get current(): string | null {
    try {
      return this._storage?.getItem(this._currentKey) ?? null;
    } catch {
      return null; // storage disabled: every reload starts a new conversation
    }
  }

  set current(id: string | null) {
    if (id !== null) {
      this._write(this._currentKey, id);
    }
  }

  /**
   * The conversation `path`'s questions went to, while it still exists: `listed` is the
   * server's list as last read (empty: not read yet, so not held against it).
   */
  notebookHome(
    path: string,
    listed: readonly IConversationSummary[]
  ): string | null {
    const known = this._notebooks()[path];
    if (!known) {
      return null;
    }
    return !listed.length || listed.some(c => c.id === known) ? known : null;
  }

  /** Questions asked from `path` went to conversation `id`. */
  rememberNotebook(path: string, id: string): void {
    const map = this._notebooks();
    if (map[path] === id) {
      return;
    }
    map[path] = id;
    this._write(this._notebookKey, JSON.stringify(map));
  }

  private _notebooks(): Record<string, string> {
    try {
      const raw = this._storage?.getItem(this._notebookKey);
      const parsed: unknown = raw ? JSON.parse(raw) : {};
      return parsed && typeof parsed === 'object'
        ? (parsed as Record<string, string>)
        : {};
    } catch {
      return {};
    }
  }

  private _write(key: string, value: string): void {
    try {
      this._storage?.setItem(key, value);
    } catch {
      // storage disabled or full: nothing to keep across reloads
    }
  }

  private _storage: StorageLike | null;
  private _currentKey: string;
  private _notebookKey: string;
}
