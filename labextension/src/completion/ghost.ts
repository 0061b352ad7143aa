/**
 * Reaching JupyterLab's inline completer widgets, to clear their ghost text.
 *
 * JupyterLab 4.6 clears a ghost text only on its model's reset (accept, the cursor moving
 * back or to another line, a blur). A keystroke that does not match the ghost text empties
 * the model's list without clearing it, and an empty answer from a provider does not clear
 * it either, so the stale text stays until the next answer. The manager's public
 * extension point, setInlineCompleterFactory, is wrapped here: the widgets are built by
 * JupyterLab's own factory as before, and this keeps a handle on each, so the provider
 * can reset the one of the editor it answers for (and Escape can dismiss).
 */
import type {
  IInlineCompleterFactory,
  InlineCompleter
} from '@jupyterlab/completer';

export class GhostTextTracker {
  /** A factory that builds through `factory` and remembers each widget it built. */
  wrap(factory: IInlineCompleterFactory): IInlineCompleterFactory {
    return {
      factory: options => {
        const completer = factory.factory(options);
        this._completers.add(completer);
        completer.disposed.connect(() => this._completers.delete(completer));
        return completer;
      }
    };
  }

  /** Clears the ghost text of `editor`'s inline completer; false when none is known. */
  clear(editor: unknown): boolean {
    if (!editor) {
      return false;
    }
    for (const completer of this._completers) {
      if (!completer.isDisposed && completer.editor === editor) {
        completer.model?.reset();
        return true;
      }
    }
    return false;
  }

  private _completers = new Set<InlineCompleter>();
}
