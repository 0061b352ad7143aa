/** The running multi-step task, pinned above the conversation. */
import { element } from './dom';
import { ITask } from './protocol';

const MARKS: Record<string, string> = {
  done: '✓',
  skipped: '↷',
  todo: '○'
};

const STATUS_WORDS: Record<string, string> = {
  done: 'done',
  skipped: 'skipped',
  todo: 'to do'
};

export class TaskView {
  readonly node: HTMLElement;

  constructor() {
    this.node = element('details', 'jp-RubberDuck-task');
    this.node.setAttribute('aria-label', 'Task');
    (this.node as HTMLDetailsElement).open = true;
    this.node.hidden = true;
  }

  /** Show the task, or hide the panel for null. */
  show(task: ITask | null): void {
    const node = this.node;
    if (!task || !task.steps.length) {
      node.hidden = true;
      node.replaceChildren();
      return;
    }
    const finished = task.steps.filter(s => s.status !== 'todo').length;
    const summary = element('summary', 'jp-RubberDuck-task-summary');
    summary.append(
      element('span', 'jp-RubberDuck-task-label', 'Task: '),
      element('span', 'jp-RubberDuck-task-goal', task.goal),
      element(
        'span',
        'jp-RubberDuck-task-progress',
        ` · ${finished}/${task.steps.length}`
      )
    );
    const list = element('ol', 'jp-RubberDuck-task-steps');
    task.steps.forEach((step, index) => {
      const item = element('li', 'jp-RubberDuck-task-step');
      item.dataset.status = step.status;
      const mark = element(
        'span',
        'jp-RubberDuck-task-mark',
        MARKS[step.status] ?? MARKS.todo
      );
      mark.setAttribute('aria-hidden', 'true');
      const words = STATUS_WORDS[step.status] ?? step.status;
      item.append(
        mark,
        element('span', 'jp-RubberDuck-task-title', step.title)
      );
      if (index === task.current) {
        item.dataset.current = 'true';
        item.setAttribute('aria-current', 'step');
        item.title = `Current step (${words})`;
      } else {
        item.title = words;
      }
      list.append(item);
    });
    node.replaceChildren(summary, list);
    node.hidden = false;
  }
}
