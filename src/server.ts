import { runUntilSignal } from './lifecycle.js';

// Runs the roles named by ROLES: gateway and worker together unless told otherwise.
await runUntilSignal();
