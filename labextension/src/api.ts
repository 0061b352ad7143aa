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

/**
 * A request the server refused. Every RubberDuck REST error body is `{code, message}`
 * (docs/protocol.md, "REST errors"); `code` says what kind of refusal it is, `message`
 * what happened. Status 0 (code `unreachable`) means no answer came at all.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string = codeForStatus(status),
    readonly retryAfter?: number
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** What the user sees: the server's message, then what to do about it. */
  get advice(): string {
    return errorAdvice(this.code, this.retryAfter);
  }
}

/** The code a bare status stands for, when the body named none (or was not ours). */
export function codeForStatus(status: number): string {
  switch (status) {
    case 0:
      return 'unreachable';
    case 401:
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 429:
      return 'rate_limited';
    default:
      return status >= 500 ? 'internal' : 'bad_request';
  }
}

/** What the user can do about a refusal with this code; '' when the message says it. */
export function errorAdvice(code: string, retryAfter?: number): string {
  switch (code) {
    case 'not_found':
      return 'It may have been deleted; reload the list.';
    case 'forbidden':
      return 'Sign in to Jupyter again (reload the page), or ask its admin for access.';
    case 'rate_limited':
      return retryAfter !== undefined
        ? `Try again in ${Math.max(1, Math.ceil(retryAfter))} s.`
        : 'Try again in a moment.';
    case 'busy':
      return 'Wait for the running work to finish, then try again.';
    case 'conflict':
      return 'It changed in the meantime; reload it and try again.';
    case 'unreachable':
      return 'Check that the Jupyter server is still running, then try again.';
    case 'provider_unavailable':
    case 'embedder_unavailable':
      return 'Try again later.';
    case 'internal':
      return 'This is a bug in RubberDuck; the server log has the details.';
    default:
      return '';
  }
}

/** One line for any error: an ApiError's message and advice, or another error's text. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const message = error.message.trim();
    const advice = error.advice;
    if (!advice) {
      return message;
    }
    return /[.!?]$/.test(message)
      ? `${message} ${advice}`
      : `${message}. ${advice}`;
  }
  return error instanceof Error ? error.message : String(error);
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

  /** GET /rubberduck/api/models: the default and the allowed models (names, never keys). */
  async listModels(): Promise<unknown> {
    return this._json('GET', 'models');
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

  /** `reverted`: an applied change the client put back itself (Undo). */
  async rejectSuggestion(
    id: string,
    reverted = false
  ): Promise<ISuggestion | null> {
    return parseSuggestion(
      await this._json(
        'POST',
        'suggestions',
        id,
        reverted ? { reverted: true } : {},
        'reject'
      )
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
    return rubberduckRequest(this._settings, parts, { method, body, query });
  }

  private _settings: ServerConnection.ISettings;
}

/**
 * A request to rubberduck/api/`parts`, with a JSON `body` if given. Resolves with an ok
 * response; rejects with an ApiError (status 0 when the server could not be reached).
 * The sidebar's and the cell review's requests both go through here, so their errors
 * read alike.
 */
export async function rubberduckRequest(
  settings: ServerConnection.ISettings,
  parts: string[],
  options: {
    method: string;
    body?: unknown;
    query?: Record<string, string>;
    signal?: AbortSignal;
  }
): Promise<Response> {
  let url = URLExt.join(
    settings.baseUrl,
    'rubberduck',
    'api',
    ...parts.map(encodeURIComponent)
  );
  if (options.query) {
    url += URLExt.objectToQueryString(options.query);
  }
  const init: RequestInit = { method: options.method, signal: options.signal };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(
      0,
      `Could not reach the Jupyter server: ${(error as Error).message}`
    );
  }
  if (!response.ok) {
    throw await apiError(response);
  }
  return response;
}

/** The server's `{code, message}` body (a chat error frame has both at the top too). */
async function apiError(response: Response): Promise<ApiError> {
  let code: string | undefined;
  let message = `${response.status} ${response.statusText}`.trim();
  let retryAfter = retryAfterHeader(response.headers.get('Retry-After'));
  try {
    const body = (await response.json()) as {
      code?: unknown;
      message?: unknown;
      retry_after?: unknown;
    };
    if (typeof body.code === 'string' && body.code) {
      code = body.code;
    }
    if (typeof body.message === 'string' && body.message) {
      message = body.message;
    }
    if (typeof body.retry_after === 'number' && body.retry_after >= 0) {
      retryAfter = body.retry_after;
    }
  } catch {
    // Not JSON (a proxy's page): the status says what there is to say.
  }
  return new ApiError(response.status, message, code, retryAfter);
}

function retryAfterHeader(value: string | null): number | undefined {
  if (value === null) {
    return undefined;
  }
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
