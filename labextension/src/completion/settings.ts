/**
 * The inline completion's settings, read from RubberDuck's own settings (schema/plugin.json,
 * keys `inlineCompletion*`), each value checked: a bad value keeps its default.
 */
export interface ICompletionSettings {
  /** The user's switch (the status-bar toggle writes it); on by default. */
  enabled: boolean;
  /** Quiet time after the last key before a request goes. */
  debounceMs: number;
  /** The longest completion shown, in lines. */
  maxLines: number;
  /** Where completions are offered: 'notebook' (code cells) and file languages. */
  fileTypes: string[];
  /** The chat's "Send kernel variables": completions follow it too. */
  sendVariables: boolean;
}

export const DEFAULT_COMPLETION_SETTINGS: Readonly<ICompletionSettings> =
  Object.freeze({
    enabled: true,
    // 250 ms: long enough that a word typed at speed asks once, short enough that a
    // pause shows ghost text before the user wonders.
    debounceMs: 250,
    maxLines: 8,
    fileTypes: ['notebook', 'python'],
    sendVariables: true
  });

export const MAX_DEBOUNCE_MS = 2_000;
export const MAX_MAX_LINES = 50;

export const SETTING_KEYS = {
  enabled: 'inlineCompletionEnabled',
  debounceMs: 'inlineCompletionDebounceMs',
  maxLines: 'inlineCompletionMaxLines',
  fileTypes: 'inlineCompletionFileTypes'
} as const;

const integer = (value: unknown, min: number, max: number): number | null =>
  typeof value === 'number' && Number.isFinite(value)
    ? Math.round(Math.min(max, Math.max(min, value)))
    : null;

export function readCompletionSettings(
  composite: Record<string, unknown>
): ICompletionSettings {
  const values: ICompletionSettings = {
    ...DEFAULT_COMPLETION_SETTINGS,
    fileTypes: [...DEFAULT_COMPLETION_SETTINGS.fileTypes]
  };
  const enabled = composite[SETTING_KEYS.enabled];
  if (typeof enabled === 'boolean') {
    values.enabled = enabled;
  }
  const debounce = integer(
    composite[SETTING_KEYS.debounceMs],
    0,
    MAX_DEBOUNCE_MS
  );
  if (debounce !== null) {
    values.debounceMs = debounce;
  }
  const lines = integer(composite[SETTING_KEYS.maxLines], 1, MAX_MAX_LINES);
  if (lines !== null) {
    values.maxLines = lines;
  }
  const types = composite[SETTING_KEYS.fileTypes];
  if (Array.isArray(types) && types.every(t => typeof t === 'string')) {
    values.fileTypes = types.map(t =>
      t.trim().toLowerCase().replace(/^\./, '')
    );
  }
  if (typeof composite.sendVariables === 'boolean') {
    values.sendVariables = composite.sendVariables;
  }
  return values;
}
