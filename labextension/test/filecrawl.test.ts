import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FileCrawl, IFileEntry, MAX_FOLDERS, TTL_MS } from '../src/filecrawl';

/** A project tree as the contents API lists it: folder -> its entries. */
function tree(
  folders: Record<string, string[]>
): (folder: string) => Promise<IFileEntry[]> {
  return async folder =>
    (folders[folder] ?? []).map(name => {
      const path = folder
        ? `${folder}/${name.replace(/\/$/, '')}`
        : name.replace(/\/$/, '');
      return {
        path,
        type: name.endsWith('/')
          ? 'directory'
          : name.endsWith('.ipynb')
            ? 'notebook'
            : 'file'
      };
    });
}

const PROJECT = {
  '': ['README.md', 'src/', 'node_modules/', 'notebooks/'],
  src: ['app.py', 'models/'],
  'src/models': ['train.py'],
  notebooks: ['etl.ipynb'],
  node_modules: ['left-pad.js']
};

/** Resolves once the walk has ended (its last progress call). */
function walked(crawl: FileCrawl): Promise<void> {
  return new Promise(resolve => crawl.start(() => !crawl.running && resolve()));
}

test('the walk finds files in subfolders, shallow first, and skips tool folders', async () => {
  const asked: string[] = [];
  const list = tree(PROJECT);
  const crawl = new FileCrawl(folder => {
    asked.push(folder);
    return list(folder);
  });
  const done = walked(crawl);
  assert.equal(crawl.running, true, 'started, not awaited');
  await done;
  assert.deepEqual(
    crawl.files.map(f => f.path),
    ['README.md', 'src/app.py', 'notebooks/etl.ipynb', 'src/models/train.py']
  );
  assert.ok(!asked.includes('node_modules'));
  assert.equal(crawl.truncated, false);
});

test('a fresh walk is not repeated; a stale one is, keeping the old files until done', async () => {
  let now = 0;
  let folders: Record<string, string[]> = { '': ['a.py'] };
  let calls = 0;
  const crawl = new FileCrawl(
    folder => {
      calls += 1;
      return tree(folders)(folder);
    },
    () => now
  );
  await walked(crawl);
  crawl.start(() => assert.fail('a fresh walk must not run again'));
  assert.equal(calls, 1);
  now += TTL_MS + 1;
  folders = { '': ['b.py'] };
  const again = walked(crawl);
  assert.deepEqual(
    crawl.files.map(f => f.path),
    ['a.py']
  );
  await again;
  assert.deepEqual(
    crawl.files.map(f => f.path),
    ['b.py']
  );
});

test('a huge tree stops at the folder limit and says so', async () => {
  // Every folder holds one file and two more folders.
  const crawl = new FileCrawl(async folder => [
    { path: `${folder}/f.py`.replace(/^\//, ''), type: 'file' },
    { path: `${folder}/a`.replace(/^\//, ''), type: 'directory' },
    { path: `${folder}/b`.replace(/^\//, ''), type: 'directory' }
  ]);
  await walked(crawl);
  assert.equal(crawl.truncated, true);
  assert.equal(crawl.files.length, MAX_FOLDERS);
});

test('a cancelled walk reports nothing more and a failing listing costs only its folder', async () => {
  const crawl = new FileCrawl(async folder => {
    if (folder === 'broken') {
      throw new Error('403');
    }
    return tree({ '': ['broken/', 'ok/'], ok: ['x.py'] })(folder);
  });
  await walked(crawl);
  assert.deepEqual(
    crawl.files.map(f => f.path),
    ['ok/x.py']
  );

  let release: () => void = () => undefined;
  const slow = new FileCrawl(
    () =>
      new Promise(resolve => {
        release = () => resolve([{ path: 'late.py', type: 'file' }]);
      })
  );
  let told = 0;
  slow.start(() => (told += 1));
  slow.cancel();
  assert.equal(slow.running, false);
  release();
  await new Promise(resolve => setImmediate(resolve));
  assert.equal(told, 0);
  assert.deepEqual(slow.files, []);
});
