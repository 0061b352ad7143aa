/**
 * The header's model picker: the models the server allows (from its hello), the user's
 * pick kept while it is still allowed, else their default model setting, else the
 * server's default. With fewer than two models there is nothing to choose and it hides.
 */
import { element } from './dom';

export class ModelPicker {
  readonly node: HTMLSelectElement;

  /** `changed` runs when the user picks a model. */
  constructor(changed: () => void) {
    const select = element('select', 'jp-RubberDuck-model');
    select.setAttribute('aria-label', 'Model');
    select.title = 'Model for the next question';
    select.hidden = true;
    select.addEventListener('change', () => {
      this._picked = select.value;
      changed();
    });
    this.node = select;
  }

  /** The server has listed models yet. */
  get hasModels(): boolean {
    return this._models.length > 0;
  }

  /** The model to ask for, or null to let the server use its default. */
  get chosen(): string | null {
    const select = this.node;
    return select.hidden || !select.value ? null : select.value;
  }

  /** The server's models and default; `preferred` is the user's default model setting. */
  setModels(
    models: string[],
    serverDefault: string | null,
    preferred: string
  ): void {
    this._models = models;
    this._serverDefault = serverDefault;
    if (this._picked !== null && !models.includes(this._picked)) {
      this._picked = null;
    }
    // The user's default model, while the server still allows it, beats the server's.
    const fallback = models.includes(preferred) ? preferred : serverDefault;
    const select = this.node;
    select.replaceChildren(...models.map(name => new Option(name, name)));
    const fallbackListed = fallback !== null && models.includes(fallback);
    select.value =
      this._picked ?? (fallbackListed ? fallback : (models[0] ?? ''));
    select.hidden = models.length < 2;
  }

  /** The user's default model setting changed: offer the same models again. */
  setPreferred(preferred: string): void {
    this.setModels(this._models, this._serverDefault, preferred);
  }

  private _models: string[] = [];
  private _serverDefault: string | null = null;
  /** The model the user chose in this panel, null until they choose one. */
  private _picked: string | null = null;
}
