/**
 * The Settings Editor's "Default model" as a choice among the models this server allows.
 *
 * The allowed models are the server's (admin config, environment), so the static schema
 * cannot list them: a `fetch` transform of the settings registry adds them as an `enum`
 * before any consumer reads the schema (`jupyter.lab.transform` in schema/plugin.json makes
 * the registry wait for it). The user's saved value stays a valid choice even when the admin
 * has since removed that model, so the registry never rejects the whole settings file for
 * it; the sidebar itself falls back to the server's default for a model it is not offered.
 */
import type { ISettingRegistry } from '@jupyterlab/settingregistry';
import type { PartialJSONObject } from '@lumino/coreutils';

/** '' means "the server's default" and is always a choice. */
export function modelChoices(
  allowed: readonly string[],
  saved: unknown
): string[] {
  const choices = [''];
  for (const name of allowed) {
    if (typeof name === 'string' && name && !choices.includes(name)) {
      choices.push(name);
    }
  }
  if (typeof saved === 'string' && !choices.includes(saved.trim())) {
    choices.push(saved.trim());
  }
  return choices;
}

/** A copy of the plugin with `defaultModel` restricted to `choices`; the rest untouched. */
export function withModelChoices(
  plugin: ISettingRegistry.IPlugin,
  allowed: readonly string[]
): ISettingRegistry.IPlugin {
  const property = plugin.schema.properties?.defaultModel;
  if (!property) {
    return plugin;
  }
  const saved = (plugin.data?.user as PartialJSONObject | undefined)
    ?.defaultModel;
  const choices = modelChoices(allowed, saved);
  return {
    ...plugin,
    schema: {
      ...plugin.schema,
      properties: {
        ...plugin.schema.properties,
        defaultModel: {
          ...property,
          // Titled choices so the form's select names the empty one.
          oneOf: choices.map(name => ({
            const: name,
            title: name === '' ? "The server's default" : name
          })),
          description:
            `${property.description ?? ''} Allowed on this server: ` +
            (choices.length > 1 ? choices.slice(1).join(', ') : 'none listed') +
            '.'
        }
      }
    }
  };
}

/** The model names GET /rubberduck/api/models lists, or [] when it cannot be read. */
export function allowedModelNames(body: unknown): string[] {
  const models = (body as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) {
    return [];
  }
  return models
    .map(entry => (entry as { name?: unknown } | null)?.name)
    .filter((name): name is string => typeof name === 'string' && name !== '');
}

/**
 * Registers the transform once the server's models are known. It must be registered even
 * when that request fails (with no choices added): the registry holds every `load()` of
 * this plugin until a transform exists.
 */
export async function offerAllowedModels(
  registry: ISettingRegistry,
  pluginId: string,
  fetchModels: () => Promise<unknown>
): Promise<void> {
  let allowed: string[] = [];
  try {
    allowed = allowedModelNames(await fetchModels());
  } catch (reason) {
    console.warn('RubberDuck: the allowed models could not be read:', reason);
  }
  registry.transform(pluginId, {
    fetch: plugin => withModelChoices(plugin, allowed)
  });
}
