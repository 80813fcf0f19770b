import { afterAll, beforeAll } from 'vitest';
import { setAddressPolicy } from '../../src/infra/address-policy.js';
import { db } from '../../src/infra/db.js';

// The test files of a worker share its process and module cache (vitest.config.ts: isolate false). Each
// starts from the process defaults, and must stop what it started: the next file would inherit it.

beforeAll(() => {
  setAddressPolicy({ allowPrivate: false, allowCustomPlatformUrls: false });
});

// Runs after the file's own afterAll hooks.
afterAll(() => {
  let connected = true;
  try {
    db();
  } catch {
    connected = false;
  }
  if (connected) {
    throw new Error('This test file left its app running (the database is still connected): stop it in afterAll');
  }
});
