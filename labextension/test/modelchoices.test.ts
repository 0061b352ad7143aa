import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { ISettingRegistry } from '@jupyterlab/settingregistry';

import {
  allowedModelNames,
  modelChoices,
  offerAllowedModels,
  withModelChoices
} from '../src/modelchoices';

function plugin(user: Record<string, unknown> = {}): ISettingRegistry.IPlugin {
  return {
    id: 'rubberduck-jupyter:plugin',
    raw: '{}',
    version: '0.1.0',
    data: { composite: {}, user },
    schema: {
      type: 'object',
      properties: {
        defaultModel: {
          type: 'string',
          default: '',
          description: 'The model.'
        },
        chatFontSize: { type: 'integer', default: 0 }
      }
    }
  } as unknown as ISettingRegistry.IPlugin;
}

test('the choices are the server default, the allowed models, and a saved stale one', () => {
  assert.deepEqual(modelChoices(['gpt', 'claude', 'gpt'], ''), [
    '',
    'gpt',
    'claude'
  ]);
  assert.deepEqual(modelChoices(['gpt'], 'retired'), ['', 'gpt', 'retired']);
  assert.deepEqual(modelChoices([], undefined), ['']);
});

test('withModelChoices restricts only defaultModel and leaves the input untouched', () => {
  const original = plugin({ defaultModel: 'retired' });
  const changed = withModelChoices(original, ['gpt', 'claude']);
  const property = changed.schema.properties!.defaultModel;
  const choices = (property.oneOf as { const: string; title: string }[]) ?? [];
  assert.deepEqual(
    choices.map(choice => choice.const),
    ['', 'gpt', 'claude', 'retired']
  );
  assert.equal(choices[0].title, "The server's default");
  assert.match(
    String(property.description),
    /Allowed on this server: gpt, claude, retired\./
  );
  assert.deepEqual(changed.schema.properties!.chatFontSize, {
    type: 'integer',
    default: 0
  });
  assert.equal(original.schema.properties!.defaultModel.oneOf, undefined);
});

test('allowedModelNames reads the models endpoint and ignores anything else', () => {
  const body = {
    default: 'gpt',
    models: [{ name: 'gpt' }, { name: 3 }, null, { name: 'c' }]
  };
  assert.deepEqual(allowedModelNames(body), ['gpt', 'c']);
  assert.deepEqual(allowedModelNames({ models: 'gpt' }), []);
  assert.deepEqual(allowedModelNames(null), []);
});

function oneOf(
  transform: ISettingRegistry.IPlugin.Transform
): { const: string }[] {
  return transform(plugin()).schema.properties!.defaultModel.oneOf as {
    const: string;
  }[];
}

test('the transform is registered even when the models cannot be read', async () => {
  const registered: ISettingRegistry.IPlugin.Transform[] = [];
  const registry = {
    transform: (
      _id: string,
      transforms: { fetch?: ISettingRegistry.IPlugin.Transform }
    ) => {
      registered.push(transforms.fetch!);
      return { dispose: () => undefined, isDisposed: false };
    }
  } as unknown as ISettingRegistry;
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    await offerAllowedModels(registry, 'p', () =>
      Promise.reject(new Error('offline'))
    );
  } finally {
    console.warn = warn;
  }
  assert.equal(registered.length, 1);
  assert.deepEqual(
    oneOf(registered[0]).map(choice => choice.const),
    ['']
  );
  await offerAllowedModels(registry, 'p', async () => ({
    models: [{ name: 'gpt' }]
  }));
  assert.deepEqual(
    oneOf(registered[1]).map(choice => choice.const),
    ['', 'gpt']
  );
});
