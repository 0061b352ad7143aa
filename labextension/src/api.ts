/**
 * The sidebar's REST calls: conversations and suggestions (see docs/protocol.md).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IConversationDetail,
  IConversationSummary,
  ISuggestion,
  parseConversationDetail,
  parseConversationList,
  parseSuggestion
} from './protocol';

/** A request the server refused; `status` 404 is "gone", 409 "changed since". */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type ExportFormat = 'markdown' | 'ipynb';

/** A file the server sent as an attachment. */
export interface IDownload {
  filename: string;
  blob: Blob;
}

export class DuckApi {
  constructor(settings?: ServerConnection.ISettings) {
    this._settings = settings ?? ServerConnection.makeSettings();
  }

  /** Where this server's data lives, to key what the browser remembers per server. */
  get baseUrl(): string {
    return this._settings.baseUrl;
  }

  async listConversations(): Promise<IConversationSummary[]> {
    return parseConversationList(await this._json('GET', 'conversations'));
  }

  /** null when the conversation does not exist (yet) or is not the user's. */
  async getConversation(id: string): Promise<IConversationDetail | null> {
    try {
      return parseConversationDetail(
        await this._json('GET', 'conversations', id)
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        return null;
      }
      throw error;
    }
  }

  async renameConversation(id: string, title: string): Promise<void> {
    await this._json('PATCH', 'conversations', id, { title });
  }

  async deleteConversation(id: string): Promise<void> {
    await this._fetch('DELETE', ['conversations', id]);
  }

  async exportConversation(
    id: string,
    format: ExportFormat
  ): Promise<IDownload> {
    const response = await this._fetch(
      'GET',
      ['conversations', id, 'export'],
      undefined,
      { format }
    );
    const disposition = response.headers.get('Content-Disposition') ?? '';
    const match = /filename="([^"]+)"/.exec(disposition);
    const ext = format === 'ipynb' ? 'ipynb' : 'md';
    return {
      filename: match?.[1] ?? `conversation.${ext}`,
      blob: await response.blob()
    };
  }

  /**
   * Apply a suggestion. With `clientTargetHash` the caller applies it to an open
   * notebook itself and the server only checks the hash and records it; without, the
   * server writes the file.
   */
  async applySuggestion(
    id: string,
    clientTargetHash?: string
  ): Promise<ISuggestion | null> {
    const body =
      clientTargetHash === undefined
        ? {}
        : { client_target_hash: clientTargetHash };
    return parseSuggestion(
      await this._json('POST', 'suggestions', id, body, 'apply')
    );
  }

  async rejectSuggestion(id: string): Promise<ISuggestion | null> {
    return parseSuggestion(
      await this._json('POST', 'suggestions', id, {}, 'reject')
    );
  }

  private async _json(
    method: string,
    collection: string,
    id?: string,
    body?: unknown,
    action?: string
  ): Promise<unknown> {
    const parts = [collection];
    if (id !== undefined) {
      parts.push(id);
    }
    if (action !== undefined) {
      parts.push(action);
    }
    const response = await this._fetch(method, parts, body);
    if (response.status === 204) {
      return null;
    }
    return response.json();
  }

  private async _fetch(
    method: string,
    parts: string[],
    body?: unknown,
    query?: Record<string, string>
  ): Promise<Response> {
    let url = URLExt.join(
      this._settings.baseUrl,
      'rubberduck',
      'api',
      ...parts.map(encodeURIComponent)
    );
    if (query) {
      url += URLExt.objectToQueryString(query);
    }
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this._settings);
    } catch (error) {
      throw new ApiError(
        0,
        `Could not reach the Jupyter server: ${(error as Error).message}`
      );
    }
    if (!response.ok) {
      throw new ApiError(response.status, await errorMessage(response));
    }
    return response;
  }

  private _settings: ServerConnection.ISettings;
}

/** Tornado's JSON error body carries the reason in `message`. */
async function errorMessage(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { message?: unknown };
    if (typeof body.message === 'string' && body.message) {
      return body.message;
    }
  } catch {
    // Not JSON: fall through to the status text.
  }
  return `${response.status} ${response.statusText}`.trim();
}
