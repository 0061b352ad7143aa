/**
 * The kernel variables a completion carries: the last list kernelvars.ts read from the
 * notebook's kernel, never waited for. A completion must not queue behind a kernel
 * round trip, so a fetch takes what is known and, when that is older than STALE_MS and
 * the kernel is idle, starts one silent read in the background for the next fetch.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';

import { kernelVariables } from '../kernelvars';
import { IKernelVariable } from '../protocol';

// Variables change when cells run, which takes seconds at least: a list this fresh is
// as good as a new one, and the kernel is asked at most once per interval while typing.
export const STALE_MS = 10_000;

interface IKnown {
  list: IKernelVariable[] | null;
  at: number;
  reading: boolean;
}

export class VariablesCache {
  /** What is known for `panel` now; refreshes it in the background when stale. */
  known(panel: NotebookPanel): IKernelVariable[] | null {
    const known = this._entry(panel);
    const kernel = panel.sessionContext.session?.kernel;
    if (Date.now() - known.at > STALE_MS && kernel?.status === 'idle') {
      this._read(panel, known);
    }
    return known.list;
  }

  /** A cell of `panel` ran: its variables changed, read them once the kernel is idle. */
  refresh(panel: NotebookPanel): void {
    this._read(panel, this._entry(panel));
  }

  private _entry(panel: NotebookPanel): IKnown {
    let known = this._known.get(panel);
    if (!known) {
      known = { list: null, at: 0, reading: false };
      this._known.set(panel, known);
    }
    return known;
  }

  private _read(panel: NotebookPanel, entry: IKnown): void {
    if (entry.reading) {
      return;
    }
    entry.reading = true;
    void kernelVariables(panel)
      .then(list => {
        if (list) {
          entry.list = list;
        }
      })
      .catch(() => undefined)
      .finally(() => {
        entry.reading = false;
        entry.at = Date.now();
      });
  }

  private _known = new WeakMap<NotebookPanel, IKnown>();
}
