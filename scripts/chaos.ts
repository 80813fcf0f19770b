// `npm run chaos -- --trials N [--seed S]`: the seeded crash trials of test/sync/crash-chaos.test.ts
// (real worker processes killed mid-run, the audience changed while none runs, the run resumed),
// N of them from seed S (a random seed unless given). Each failing trial names the CRASH_SEED that
// replays it. Prints vitest's report; exits non-zero if a trial failed.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '50' }, seed: { type: 'string' } } });
const trials = Number(values.trials);
if (!Number.isInteger(trials) || trials < 1) throw new Error('--trials must be a positive integer');
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) throw new Error('--seed must be a non-negative integer');

console.log(`crash trials: ${trials} from CRASH_SEED=${seed}`);
const root = fileURLToPath(new URL('../', import.meta.url));
const vitest = spawn(`${root}node_modules/.bin/vitest`, ['run', 'test/sync/crash-chaos.test.ts'], {
  cwd: root,
  env: { ...process.env, CRASH_SEED: String(seed), CRASH_TRIALS: String(trials) },
  stdio: 'inherit',
});
vitest.on('exit', (code, signal) => {
  process.exitCode = code ?? (signal ? 1 : 0);
});
