import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fixRequestText } from '../src/fixerror';

test('"Fix this error" names the last exception of the traceback and the cell', () => {
  assert.equal(
    fixRequestText({
      error:
        "Traceback...\nKeyError: 'north'\nDuring handling: ValueError: bad",
      cell_index: 1
    }),
    'Fix the ValueError in cell 2'
  );
  assert.equal(
    fixRequestText({ error: 'something odd', cell_index: 0 }),
    'Fix the error in cell 1'
  );
  assert.equal(
    fixRequestText({ error: 'KeyboardInterrupt' }),
    'Fix the KeyboardInterrupt'
  );
  assert.equal(fixRequestText({}), 'Fix the error');
});
