import { runUntilSignal } from './lifecycle.js';

// A worker-only process: runs sync jobs, serves no HTTP.
await runUntilSignal({ ROLES: ['worker'] });
