/**
 * The cell review's requests: a cell's static findings, the notebook's cross-cell
 * findings (POST /rubberduck/api/review/{cell,notebook}), and the model's review of a
 * cell streamed as NDJSON chat frames from POST /rubberduck/api/chat, the same path the
 * %%duck magic reads.
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
  ICellFinding,
  IStaticReview,
  NdjsonSplitter,
  parseCellReview,
  parseFinding
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

  /** Cross-cell findings, each with the index of its cell. */
  async reviewNotebook(
    cells: INotebookCellInput[]
  ): Promise<{ cell: number; finding: ICellFinding }[]> {
    const response = await this._post(['review', 'notebook'], { cells });
    const body = (await response.json()) as { findings?: unknown };
    const out: { cell: number; finding: ICellFinding }[] = [];
    for (const raw of Array.isArray(body.findings) ? body.findings : []) {
      const finding = parseFinding(raw, 'notebook');
      const cell = (raw as { cell?: unknown }).cell;
      if (finding && typeof cell === 'number') {
        out.push({ cell, finding });
      }
    }
    return out;
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
