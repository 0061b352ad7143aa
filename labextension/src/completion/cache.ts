/**
 * Completions already answered, so typing never asks twice for the same thing:
 *
 * - `get`: the same path, prefix and suffix as an earlier request gives its text back
 *   (backspacing over a character and typing it again, or returning to a cell).
 * - `continuation`: the user types the first characters of a completion that was
 *   shown; what is left of it is the answer, with no request at all. JupyterLab's
 *   inline completer asks again on every keystroke, so this is what keeps ghost text
 *   steady while the user types along with it.
 *
 * Bounded: the last MAX_ENTRIES answers, and only the last MAX_SHOWN of them are
 * scanned for a continuation (each check is one startsWith on the prefix: microseconds).
 */
export const MAX_ENTRIES = 64;
export const MAX_SHOWN = 8;

interface IEntry {
  path: string;
  prefix: string;
  suffix: string;
  text: string;
}

export class CompletionCache {
  get size(): number {
    return this._entries.size;
  }

  get(path: string, prefix: string, suffix: string): string | undefined {
    const key = keyOf(path, prefix, suffix);
    const entry = this._entries.get(key);
    if (!entry) {
      return undefined;
    }
    // Most recently used last, for the eviction below.
    this._entries.delete(key);
    this._entries.set(key, entry);
    return entry.text;
  }

  put(path: string, prefix: string, suffix: string, text: string): void {
    const key = keyOf(path, prefix, suffix);
    this._entries.delete(key);
    this._entries.set(key, { path, prefix, suffix, text });
    while (this._entries.size > MAX_ENTRIES) {
      const oldest = this._entries.keys().next().value as string;
      this._entries.delete(oldest);
    }
    if (text) {
      this._shown = [
        { path, prefix, suffix, text },
        ...this._shown.filter(e => keyOf(e.path, e.prefix, e.suffix) !== key)
      ].slice(0, MAX_SHOWN);
    }
  }

  /**
   * A completion cut while it streamed: typing along it may still consume what was
   * shown, but the same request is not answered with it (it was never finished).
   */
  putShown(path: string, prefix: string, suffix: string, text: string): void {
    if (!text) {
      return;
    }
    const key = keyOf(path, prefix, suffix);
    this._shown = [
      { path, prefix, suffix, text },
      ...this._shown.filter(e => keyOf(e.path, e.prefix, e.suffix) !== key)
    ].slice(0, MAX_SHOWN);
  }

  /**
   * The rest of a shown completion that the new prefix has typed into, or null: the
   * path and suffix are the same, the prefix extends the completion's prefix, and what
   * was typed since is the start of the completion (and not all of it).
   */
  continuation(path: string, prefix: string, suffix: string): string | null {
    for (const entry of this._shown) {
      if (
        entry.path !== path ||
        entry.suffix !== suffix ||
        prefix.length <= entry.prefix.length ||
        prefix.length - entry.prefix.length >= entry.text.length
      ) {
        continue;
      }
      const typed = prefix.slice(entry.prefix.length);
      if (prefix.startsWith(entry.prefix) && entry.text.startsWith(typed)) {
        return entry.text.slice(typed.length);
      }
    }
    return null;
  }

  /** The user dismissed what was shown: typing along must not bring it back. */
  dismissShown(): void {
    this._shown = [];
  }

  clear(): void {
    this._entries.clear();
    this._shown = [];
  }

  private _entries = new Map<string, IEntry>();
  private _shown: IEntry[] = [];
}

function keyOf(path: string, prefix: string, suffix: string): string {
  // NUL cannot appear in a path; prefix and suffix lengths keep the split unambiguous.
  return `${path}\0${prefix.length}\0${prefix}\0${suffix}`;
}
