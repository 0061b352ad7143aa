/**
 * A notice's action button (e.g. "Index this project" on the no-index notice). answer.ts
 * calls renderNoticeAction through a one-line hook; the command registry is handed over
 * once at activation, so answers need no new service.
 */
import { CommandRegistry } from '@lumino/commands';

import { INotice } from '../protocol';

let commands: CommandRegistry | null = null;

export function setNoticeCommands(registry: CommandRegistry): void {
  commands = registry;
}

/** Appends a button that runs the notice's command, if it has one we know. */
export function renderNoticeAction(banner: HTMLElement, notice: INotice): void {
  const action = notice.action;
  if (!action || !commands || !commands.hasCommand(action.command)) {
    return;
  }
  const registry = commands;
  const run = document.createElement('button');
  run.type = 'button';
  run.className = 'jp-RubberDuck-noticeAction jp-mod-styled jp-mod-accept';
  run.textContent = action.label;
  run.dataset.command = action.command;
  run.addEventListener('click', () => {
    void registry.execute(action.command);
  });
  banner.append(' ', run);
}
