/**
 * The index's REST calls for IndexStatusModel, through ServerConnection (token, XSRF and
 * base URL as JupyterLab has them). Errors become one readable sentence.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IIndexBackend } from './model';

export class IndexBackend implements IIndexBackend {
  private readonly _settings = ServerConnection.makeSettings();

  get(): Promise<unknown> {
    return this._request('GET');
  }

  start(scope?: string[]): Promise<unknown> {
    return this._request('POST', scope === undefined ? {} : { scope });
  }

  stop(): Promise<unknown> {
    return this._request('DELETE');
  }

  /** Top-level folders of the server's root, for choosing the scope. */
  async folders(): Promise<string[]> {
    const url = URLExt.join(this._settings.baseUrl, 'api', 'contents');
    const response = await ServerConnection.makeRequest(
      url + '?content=1&type=directory',
      { method: 'GET' },
      this._settings
    );
    if (!response.ok) {
      throw new Error(`The folder list failed: ${response.status}`);
    }
    const body = (await response.json()) as {
      content?: { type?: unknown; name?: unknown }[];
    };
    return (body.content ?? [])
      .filter(
        item => item.type === 'directory' && typeof item.name === 'string'
      )
      .map(item => item.name as string)
      .filter(name => !name.startsWith('.'))
      .sort();
  }

  private async _request(method: string, body?: unknown): Promise<unknown> {
    const url = URLExt.join(
      this._settings.baseUrl,
      'rubberduck',
      'api',
      'index'
    );
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this._settings);
    } catch (error) {
      throw new Error(
        `Could not reach the Jupyter server: ${(error as Error).message}`
      );
    }
    const data: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      const message =
        typeof data === 'object' &&
        data !== null &&
        typeof (data as { message?: unknown }).message === 'string'
          ? (data as { message: string }).message
          : `${response.status} ${response.statusText}`;
      throw new Error(message);
    }
    return data;
  }
}
