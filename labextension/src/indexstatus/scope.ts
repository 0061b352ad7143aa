/**
 * What the index panel's checkboxes say, without the DOM: "The whole project" or a set
 * of top-level folders. While the whole project is chosen the folder boxes are unticked
 * and disabled (a ticked box that does not count would read as a choice); the folders
 * the user had ticked are kept, and come back when the whole project is unticked.
 */

/** One folder checkbox as the view draws it. */
export interface IFolderBox {
  name: string;
  checked: boolean;
  disabled: boolean;
}

export class ScopeChoice {
  /**
   * The panel's folders and the saved scope ([] is the whole project); a saved path
   * deeper than the top level counts for its top-level folder.
   */
  load(folders: readonly string[], saved: readonly string[]): void {
    this._folders = [...folders];
    const top = new Set(saved.map(path => path.split('/')[0]));
    this._picked = new Set(this._folders.filter(name => top.has(name)));
    this._whole = saved.length === 0;
  }

  get whole(): boolean {
    return this._whole;
  }

  setWhole(whole: boolean): void {
    this._whole = whole;
  }

  /** Tick or untick a folder; the boxes cannot change while the whole project counts. */
  setFolder(name: string, checked: boolean): void {
    if (this._whole || !this._folders.includes(name)) {
      return;
    }
    if (checked) {
      this._picked.add(name);
    } else {
      this._picked.delete(name);
    }
  }

  get boxes(): IFolderBox[] {
    return this._folders.map(name => ({
      name,
      checked: !this._whole && this._picked.has(name),
      disabled: this._whole
    }));
  }

  /** The scope to index, in the folders' order: [] for the whole project. */
  get scope(): string[] {
    return this._whole ? [] : this._folders.filter(n => this._picked.has(n));
  }

  /** Something is chosen: the whole project or at least one folder. */
  get isValid(): boolean {
    return this._whole || this.scope.length > 0;
  }

  private _folders: string[] = [];
  private _picked = new Set<string>();
  private _whole = true;
}
