/**
 * RubberDuck's user settings, from JupyterLab's settings registry (schema/plugin.json).
 *
 * One `DuckSettings` lives for the page; every surface reads `values` and listens to
 * `changed`, so an edit in the Settings Editor applies without a reload. Keyboard
 * shortcuts are not here: JupyterLab's shortcut system reads them from the same schema.
 */
import type { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ISignal, Signal } from '@lumino/signaling';

export interface IDuckSettingsValues {
  /** Whether each message carries the kernel's variables (a chip can still remove them). */
  sendVariables: boolean;
  /** Review a code cell each time it runs (static findings only, no model call). */
  autoReviewOnRun: boolean;
  /** The model picked when the sidebar opens; '' means the server's default. */
  defaultModel: string;
  /** The chat's font size in pixels; 0 follows JupyterLab's content font size. */
  chatFontSize: number;
  /** Apply the agent's edits as they arrive (each keeps an Undo); sent as context.agent. */
  autoApplyEdits: boolean;
}

export const DEFAULT_SETTINGS: Readonly<IDuckSettingsValues> = Object.freeze({
  sendVariables: true,
  autoReviewOnRun: false,
  defaultModel: '',
  chatFontSize: 0,
  autoApplyEdits: false
});

export const MIN_FONT_SIZE = 8;
export const MAX_FONT_SIZE = 32;

/** The registry's composite settings, each value checked; a bad value keeps its default. */
export function readSettings(
  composite: Partial<Record<keyof IDuckSettingsValues, unknown>>
): IDuckSettingsValues {
  const values: IDuckSettingsValues = { ...DEFAULT_SETTINGS };
  if (typeof composite.sendVariables === 'boolean') {
    values.sendVariables = composite.sendVariables;
  }
  if (typeof composite.autoReviewOnRun === 'boolean') {
    values.autoReviewOnRun = composite.autoReviewOnRun;
  }
  if (typeof composite.defaultModel === 'string') {
    values.defaultModel = composite.defaultModel.trim();
  }
  if (typeof composite.autoApplyEdits === 'boolean') {
    values.autoApplyEdits = composite.autoApplyEdits;
  }
  const size = composite.chatFontSize;
  if (typeof size === 'number' && Number.isFinite(size)) {
    values.chatFontSize =
      size === 0
        ? 0
        : Math.round(Math.min(MAX_FONT_SIZE, Math.max(MIN_FONT_SIZE, size)));
  }
  return values;
}

export class DuckSettings {
  constructor(values: Partial<IDuckSettingsValues> = {}) {
    this._values = { ...DEFAULT_SETTINGS, ...values };
  }

  get values(): Readonly<IDuckSettingsValues> {
    return this._values;
  }

  /** Emits the new values after any of them changed. */
  get changed(): ISignal<DuckSettings, Readonly<IDuckSettingsValues>> {
    return this._changed;
  }

  /** Takes the registry's values now and on every later change. */
  follow(settings: ISettingRegistry.ISettings): void {
    const take = (): void => this.update(readSettings(settings.composite));
    take();
    settings.changed.connect(take);
  }

  update(values: Partial<IDuckSettingsValues>): void {
    const next = { ...this._values, ...values };
    const keys = Object.keys(next) as (keyof IDuckSettingsValues)[];
    if (keys.every(key => next[key] === this._values[key])) {
      return;
    }
    this._values = next;
    this._changed.emit(next);
  }

  private _values: IDuckSettingsValues;
  private _changed = new Signal<DuckSettings, Readonly<IDuckSettingsValues>>(
    this
  );
}
