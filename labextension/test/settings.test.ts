import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEFAULT_SETTINGS, DuckSettings, readSettings } from '../src/settings';

test('readSettings keeps a default for each value of the wrong type', () => {
  const values = readSettings({
    sendVariables: 'yes',
    autoReviewOnRun: 1,
    defaultModel: 7,
    chatFontSize: Number.NaN
  });
  assert.deepEqual(values, DEFAULT_SETTINGS);
});

test('readSettings clamps the font size and keeps 0 as "follow JupyterLab"', () => {
  assert.equal(readSettings({ chatFontSize: 100 }).chatFontSize, 32);
  assert.equal(readSettings({ chatFontSize: 3 }).chatFontSize, 8);
  assert.equal(readSettings({ chatFontSize: 0 }).chatFontSize, 0);
  assert.equal(readSettings({ chatFontSize: 14.6 }).chatFontSize, 15);
  assert.equal(readSettings({ defaultModel: '  gpt  ' }).defaultModel, 'gpt');
});

test('DuckSettings emits once per real change, with the new values', () => {
  const settings = new DuckSettings();
  const seen: boolean[] = [];
  settings.changed.connect((_, values) => seen.push(values.autoReviewOnRun));
  settings.update({ autoReviewOnRun: false });
  settings.update({ autoReviewOnRun: true });
  settings.update({ autoReviewOnRun: true });
  assert.deepEqual(seen, [true]);
  assert.equal(settings.values.autoReviewOnRun, true);
});
