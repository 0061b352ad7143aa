/**
 * The cell review's requests: a cell's static findings (POST /rubberduck/api/review/cell),
 * the notebook's static pass a slice at a time with its cross-cell findings (POST
 * /rubberduck/api/review/notebook with "static"), and the model's review of a cell
 * streamed as NDJSON chat frames from POST /rubberduck/api/chat, the same path the %%duck
 * magic reads.
 */
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, rubberduckRequest } from '../api';
import {
  IChatContext,
  ISuggestion,
  parseSuggestion,
  PROTOCOL_VERSION
} from '../protocol';
import {
  INotebookStaticReview,
  IStaticReview,
  NdjsonSplitter,
  parseCellReview,
  parseNotebookStaticReview
} from './model';

export interface INotebookCellInput {
  index: number;
  source: string;
  execution_count: number | null;
}

export interface IModelReviewHandlers {
  chunk: (text: string) => void;
  suggestion: (suggestion: ISuggestion) => void;
}

export class CellReviewApi {
  constructor(settings?: ServerConnection.ISettings) {
    this._settings = settings ?? ServerConnection.makeSettings();
  }

  async reviewCell(
    source: string,
    knownNames: string[] = [],
    above: string[] = []
  ): Promise<IStaticReview> {
    const response = await this._post(['review', 'cell'], {
      source,
      known_names: knownNames,
      above
    });
    return parseCellReview(await response.json());
  }

  /**
   * The static reviews of the code cells at positions `start <= k < stop` of `cells`,
   * each seeing the names every cell before it binds (so the whole notebook is sent each
   * time), and with `crossCell` the cross-cell findings of all `cells`, in one request.
   * Rejects with an ApiError; a server already running its 2 static passes answers 429
   * `busy` with a `retryAfter`.
   */
  async reviewNotebookStatic(
    cells: INotebookCellInput[],
    start: number,
    stop: number,
    crossCell: boolean,
    signal?: AbortSignal
  ): Promise<INotebookStaticReview> {
    const response = await this._post(
      ['review', 'notebook'],
      { cells, static: { start, stop }, cross_cell: crossCell },
      signal
    );
    return parseNotebookStaticReview(await response.json());
  }

  /** Streams the model's review of the cell; resolves when the turn is done. */
  async streamModelReview(
    conversationId: string,
    context: IChatContext,
    handlers: IModelReviewHandlers,
    signal?: AbortSignal
  ): Promise<void> {
    const response = await this._post(
      ['chat'],
      {
        type: 'chat',
        v: PROTOCOL_VERSION,
        id: `cellreview-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
        conversation_id: conversationId,
        text: '/review this cell',
        context
      },
      signal
    );
    const reader = response.body?.getReader();
    if (!reader) {
      return;
    }
    const decoder = new TextDecoder();
    const split = new NdjsonSplitter();
    const handle = (frame: unknown): void => {
      const obj = frame as Record<string, unknown>;
      if (obj.type === 'chunk' && typeof obj.text === 'string' && !obj.step) {
        handlers.chunk(obj.text);
      } else if (obj.type === 'suggestion') {
        const suggestion = parseSuggestion(obj.suggestion);
        if (suggestion) {
          handlers.suggestion(suggestion);
        }
      } else if (obj.type === 'error') {
        throw new ApiError(
          0,
          typeof obj.message === 'string' ? obj.message : 'The review failed.',
          typeof obj.code === 'string' ? obj.code : undefined
        );
      }
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        break;
      }
      split.push(decoder.decode(value, { stream: true })).forEach(handle);
    }
    split.flush().forEach(handle);
  }

  private _post(
    parts: string[],
    body: unknown,
    signal?: AbortSignal
  ): Promise<Response> {
    return rubberduckRequest(this._settings, parts, {
      method: 'POST',
      body,
      signal
    });
  }

  private _settings: ServerConnection.ISettings;
}
