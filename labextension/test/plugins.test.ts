import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChatModel } from '../src/chatmodel';
import {
  EnginesModel,
  escapeMarkdown,
  IPluginNotice,
  pluginNotice
} from '../src/plugins';
import {
  frameNumber,
  IEngineInfo,
  IHelloFrame,
  IPluginsFrame,
  serverFrameOf
} from '../src/protocol';
import { ResumeTracker } from '../src/resume';

const REVIEW = {
  name: 'review',
  title: 'Review',
  description: 'Reviews code.',
  commands: ['/review']
};
const PANDAS = {
  name: 'plugin:pandas-review:pandas',
  title: 'pandas (plugin pandas-review)',
  description: 'Checks pandas code.',
  commands: ['/pandas']
};

function hello(engines: IEngineInfo[]): IHelloFrame {
  const frame = serverFrameOf({
    type: 'hello',
    protocol_version: 1,
    model: { configured: true, name: 'm' },
    models: ['m'],
    engines
  });
  assert.ok(frame && frame.type === 'hello');
  return frame;
}

function plugins(json: Record<string, unknown>): IPluginsFrame {
  const frame = serverFrameOf({ type: 'plugins', ...json });
  assert.ok(frame && frame.type === 'plugins', JSON.stringify(json));
  return frame;
}

const DISABLED = {
  name: 'pandas-review',
  state: 'disabled',
  reason:
    '3 consecutive failures; last: analysis_augment raised ValueError: boom',
  version: '1.0'
};

test('a plugins frame parses with its engines and its change', () => {
  const frame = plugins({ engines: [REVIEW, PANDAS], changed: DISABLED });
  assert.deepEqual(frame, {
    type: 'plugins',
    engines: [REVIEW, PANDAS],
    changed: DISABLED
  });
});

test('changed is optional, and its reason and version default to empty', () => {
  assert.deepEqual(plugins({ engines: [REVIEW] }), {
    type: 'plugins',
    engines: [REVIEW]
  });
  const frame = plugins({
    engines: [],
    changed: { name: 'x', state: 'skipped', version: null }
  });
  assert.deepEqual(frame.changed, {
    name: 'x',
    state: 'skipped',
    reason: '',
    version: ''
  });
  // A change without a name or a state is left out; the list still counts.
  assert.equal(
    plugins({ engines: [REVIEW], changed: { state: 'loaded' } }).changed,
    undefined
  );
});

test('a plugins frame without an engines list is malformed', () => {
  assert.equal(serverFrameOf({ type: 'plugins' }), null);
  assert.equal(serverFrameOf({ type: 'plugins', engines: 'x' }), null);
  assert.equal(
    serverFrameOf({ type: 'plugins', engines: null, changed: DISABLED }),
    null
  );
});

test('the four states read as the sidebar says them', () => {
  assert.deepEqual(pluginNotice(DISABLED), {
    code: 'plugin_disabled',
    level: 'warning',
    message:
      'Plugin **pandas-review** was turned off: 3 consecutive failures; last: ' +
      'analysis\\_augment raised ValueError: boom. The rest of RubberDuck keeps ' +
      "working; `jupyter rubberduck plugins list` shows every plugin's state."
  });
  assert.deepEqual(
    pluginNotice({
      name: 'pandas-review',
      state: 'failed',
      reason: 'reload failed: SyntaxError: bad; version 1.0 keeps running',
      version: '1.0'
    }),
    {
      code: 'plugin_reload_failed',
      level: 'warning',
      message:
        'Plugin **pandas-review** could not be reloaded: SyntaxError: bad; ' +
        'version 1.0 keeps running.'
    }
  );
  assert.deepEqual(
    pluginNotice({
      name: 'pandas-review',
      state: 'loaded',
      reason: '',
      version: '1.1'
    }),
    {
      code: 'plugin_loaded',
      level: 'info',
      message: 'Plugin **pandas-review** 1.1 was loaded.'
    }
  );
  assert.deepEqual(
    pluginNotice({
      name: 'pandas-review',
      state: 'skipped',
      reason: 'its file was removed.',
      version: ''
    }),
    {
      code: 'plugin_unloaded',
      level: 'info',
      message: 'Plugin **pandas-review** was unloaded: its file was removed.'
    }
  );
});

test('a missing reason or version leaves no dangling words', () => {
  const change = { name: 'p', reason: '', version: '' };
  assert.equal(
    pluginNotice({ ...change, state: 'loaded' })?.message,
    'Plugin **p** was loaded.'
  );
  assert.equal(
    pluginNotice({ ...change, state: 'skipped' })?.message,
    'Plugin **p** was unloaded.'
  );
  assert.equal(
    pluginNotice({ ...change, state: 'failed', reason: 'reload failed: ' })
      ?.message,
    'Plugin **p** could not be reloaded.'
  );
  assert.match(
    pluginNotice({ ...change, state: 'disabled' })?.message ?? '',
    /^Plugin \*\*p\*\* was turned off\. The rest/
  );
});

test('a state this version does not know says nothing', () => {
  assert.equal(
    pluginNotice({ name: 'p', state: 'paused', reason: '', version: '' }),
    null
  );
});

test("the server's text is shown literally, on one line", () => {
  assert.equal(
    escapeMarkdown('f(*args) raised <KeyError> [x]\n# not a heading'),
    'f(\\*args) raised \\<KeyError\\> \\[x\\] # not a heading'
  );
  const notice = pluginNotice({
    name: 'evil_<b>',
    state: 'skipped',
    reason: 'refused: `x`',
    version: ''
  });
  assert.equal(
    notice?.message,
    'Plugin **evil\\_\\<b\\>** was unloaded: refused: \\`x\\`.'
  );
});

test('hello sets the engines; a plugins frame replaces them', () => {
  const model = new EnginesModel();
  const lists: string[][] = [];
  model.enginesChanged.connect((_, engines) =>
    lists.push(engines.map(e => e.name))
  );
  model.hello(hello([REVIEW, PANDAS]));
  assert.equal(model.byCommand('/pandas')?.name, PANDAS.name);
  model.apply(plugins({ engines: [REVIEW], changed: DISABLED }));
  assert.deepEqual(
    model.engines.map(e => e.name),
    ['review']
  );
  assert.equal(model.byCommand('/pandas'), undefined);
  assert.deepEqual(lists, [['review', PANDAS.name], ['review']]);
});

test('a second hello (after a reconnect) replaces the list, not appends', () => {
  const model = new EnginesModel();
  model.hello(hello([REVIEW, PANDAS]));
  model.hello(hello([REVIEW]));
  assert.deepEqual(model.engines, [REVIEW]);
  model.hello(hello([PANDAS]));
  assert.deepEqual(model.engines, [PANDAS]);
});

test('the same list again emits no change', () => {
  const model = new EnginesModel();
  let changes = 0;
  model.enginesChanged.connect(() => (changes += 1));
  model.hello(hello([REVIEW]));
  model.apply(plugins({ engines: [REVIEW], changed: DISABLED }));
  model.hello(hello([REVIEW]));
  assert.equal(changes, 1);
});

test('each change with a known state emits one notice, in order', () => {
  const model = new EnginesModel();
  const notices: IPluginNotice[] = [];
  model.noticeAdded.connect((_, notice) => notices.push(notice));
  assert.equal(model.apply(plugins({ engines: [REVIEW] })), null);
  model.apply(plugins({ engines: [REVIEW], changed: DISABLED }));
  model.apply(
    plugins({
      engines: [REVIEW],
      changed: { name: 'q', state: 'paused', reason: '', version: '' }
    })
  );
  model.apply(
    plugins({
      engines: [REVIEW, PANDAS],
      changed: { ...DISABLED, state: 'loaded', reason: '' }
    })
  );
  assert.deepEqual(
    notices.map(n => [n.code, n.level]),
    [
      ['plugin_disabled', 'warning'],
      ['plugin_loaded', 'info']
    ]
  );
});

test("an engine's title outlives its plugin, for answers already shown", () => {
  const model = new EnginesModel();
  model.hello(hello([REVIEW, PANDAS]));
  model.apply(plugins({ engines: [REVIEW], changed: DISABLED }));
  assert.equal(model.title(PANDAS.name), PANDAS.title);
  assert.equal(model.title('review'), 'Review');
  assert.equal(model.title('never_seen'), null);
  // A reload that renames it: the new title wins.
  model.apply(plugins({ engines: [REVIEW, { ...PANDAS, title: 'pandas 2' }] }));
  assert.equal(model.title(PANDAS.name), 'pandas 2');
});

test('a plugins frame between the chunks of an answer leaves that answer alone', () => {
  // The socket's resume bookkeeping: the frame has no id and no n.
  const tracker = new ResumeTracker();
  tracker.begin('t');
  const chunk = (n: number, seq: number, text: string) => {
    const raw = { type: 'chunk', id: 't', n, seq, text };
    const frame = serverFrameOf(raw);
    assert.ok(frame);
    return { frame, n: frameNumber(raw) };
  };
  const first = chunk(1, 0, 'Hello ');
  assert.ok(tracker.accept(first.frame, first.n));
  const raw = { type: 'plugins', engines: [REVIEW], changed: DISABLED };
  const frame = serverFrameOf(raw);
  assert.ok(frame && frame.type === 'plugins');
  assert.equal(frameNumber(raw), null);
  assert.ok(tracker.accept(frame, frameNumber(raw)));
  assert.equal(tracker.lastSeen('t'), 1);
  assert.deepEqual(tracker.turns, ['t']);

  // The chat's state: the turn and its chunk order go on as if nothing came.
  const chat = new ChatModel('c');
  chat.startTurn('t', 'q?');
  const shown = chat.acceptChunk('t', 0, { text: 'Hello ' });
  new EnginesModel().apply(frame);
  shown.push(...chat.acceptChunk('t', 1, { text: 'world' }));
  assert.deepEqual(
    shown.map(c => c.text),
    ['Hello ', 'world']
  );
  assert.equal(chat.turn?.id, 't');
  const second = chunk(2, 1, 'world');
  assert.ok(tracker.accept(second.frame, second.n));
  assert.equal(tracker.lastSeen('t'), 2);
});
