/**
 * The engines the server offers, and what the sidebar says when a plugin changes state,
 * without a DOM. The hello frame brings the list when a socket opens; a `plugins` frame
 * (protocol.md, "Outside turns") brings the whole list again whenever a plugin is
 * disabled, reloaded, fails to reload or is unloaded at run time, so the slash commands
 * follow without a reconnect. Either frame replaces the list, never adds to it.
 *
 * A `plugins` frame belongs to no turn: this model holds nothing of the answer streaming,
 * so applying one between two chunks leaves that answer as it was. The panel draws the
 * list (slash.ts) and the notices (MessageLog.addNotice); unit tests drive this directly
 * (labextension/test/plugins.test.ts).
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  IEngineInfo,
  IHelloFrame,
  IPluginChange,
  IPluginsFrame,
  PluginState
} from './protocol';

/** How a notice outside a turn reads: a warning (something stopped) or information. */
export type NoticeLevel = 'warning' | 'info';

/** Client-side notice codes for plugin changes (not the server's NoticeCode). */
export const PluginNoticeCode = {
  DISABLED: 'plugin_disabled',
  RELOAD_FAILED: 'plugin_reload_failed',
  LOADED: 'plugin_loaded',
  UNLOADED: 'plugin_unloaded'
} as const;

export type PluginNoticeCode =
  (typeof PluginNoticeCode)[keyof typeof PluginNoticeCode];

/** A sidebar notice about a plugin; `message` is Markdown. */
export interface IPluginNotice {
  code: PluginNoticeCode;
  level: NoticeLevel;
  message: string;
}

// Characters that mean something inline in Markdown. The server's text (a plugin's name,
// an exception's message) is shown as it is: `*args` must not turn into emphasis, nor
// `<module>` into a tag the sanitizer then drops.
const MARKDOWN_SPECIAL = /[\\`*_[\]<>&~|]/g;

/**
 * `text` as literal Markdown inline text: special characters escaped, and line breaks
 * folded into spaces so that no line of it can start a heading, a list or a code block.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .trim()
    .replace(MARKDOWN_SPECIAL, char => `\\${char}`);
}

// The server's reason for a failed reload starts with this; the notice already says it.
const RELOAD_FAILED_PREFIX = /^reload failed:\s*/i;

/** ": reason", without a final full stop (the sentence adds its own); "" for none. */
function because(reason: string): string {
  const text = escapeMarkdown(reason).replace(/[.\s]+$/, '');
  return text ? `: ${text}` : '';
}

/**
 * What the sidebar says about a plugin's change; null for a state this version does not
 * know (the engine list still follows it).
 */
export function pluginNotice(change: IPluginChange): IPluginNotice | null {
  const name = `**${escapeMarkdown(change.name)}**`;
  switch (change.state) {
    case PluginState.DISABLED:
      return {
        code: PluginNoticeCode.DISABLED,
        level: 'warning',
        message:
          `Plugin ${name} was turned off${because(change.reason)}. The rest of ` +
          'RubberDuck keeps working; `jupyter rubberduck plugins list` shows every ' +
          "plugin's state."
      };
    case PluginState.FAILED:
      return {
        code: PluginNoticeCode.RELOAD_FAILED,
        level: 'warning',
        message: `Plugin ${name} could not be reloaded${because(
          change.reason.replace(RELOAD_FAILED_PREFIX, '')
        )}.`
      };
    case PluginState.LOADED: {
      const version = escapeMarkdown(change.version);
      return {
        code: PluginNoticeCode.LOADED,
        level: 'info',
        message: `Plugin ${name}${version ? ` ${version}` : ''} was loaded.`
      };
    }
    case PluginState.SKIPPED:
      return {
        code: PluginNoticeCode.UNLOADED,
        level: 'info',
        message: `Plugin ${name} was unloaded${because(change.reason)}.`
      };
    default:
      return null;
  }
}

function sameEngines(
  a: readonly IEngineInfo[],
  b: readonly IEngineInfo[]
): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class EnginesModel {
  /** The engines the server offers now, in its order. */
  get engines(): readonly IEngineInfo[] {
    return this._engines;
  }

  /** Emits the new list whenever it differs from the one before. */
  get enginesChanged(): ISignal<EnginesModel, readonly IEngineInfo[]> {
    return this._enginesChanged;
  }

  /** Emits each notice a plugin change asks for, in the order the frames came. */
  get noticeAdded(): ISignal<EnginesModel, IPluginNotice> {
    return this._noticeAdded;
  }

  /** A (new) socket's hello: its list replaces whatever was known before. */
  hello(frame: IHelloFrame): void {
    this._replace(frame.engines);
  }

  /** A `plugins` frame: the list is replaced, then its notice (if any) emitted. */
  apply(frame: IPluginsFrame): IPluginNotice | null {
    this._replace(frame.engines);
    const notice = frame.changed ? pluginNotice(frame.changed) : null;
    if (notice) {
      this._noticeAdded.emit(notice);
    }
    return notice;
  }

  /** The engine a slash command picks (e.g. "/fix"), if one does now. */
  byCommand(command: string): IEngineInfo | undefined {
    return this._engines.find(e => e.commands.includes(command));
  }

  /**
   * The title of engine `name`: the current one, else the last it had, so an answer a
   * plugin gave keeps its badge after the plugin is gone; null for a name never seen.
   */
  title(name: string): string | null {
    return (
      this._engines.find(e => e.name === name)?.title ??
      this._titles.get(name) ??
      null
    );
  }

  private _replace(engines: readonly IEngineInfo[]): void {
    for (const engine of engines) {
      this._titles.set(engine.name, engine.title);
    }
    if (sameEngines(this._engines, engines)) {
      return;
    }
    this._engines = engines.slice();
    this._enginesChanged.emit(this._engines);
  }

  private _engines: IEngineInfo[] = [];
  private _titles = new Map<string, string>();
  private _enginesChanged = new Signal<EnginesModel, readonly IEngineInfo[]>(
    this
  );
  private _noticeAdded = new Signal<EnginesModel, IPluginNotice>(this);
}
