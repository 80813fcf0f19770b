// `npm run bench:startup`: what a new user waits for and what the processes hold.
//  - first start: `npm start` on a fresh DATA_DIR (embedded database created, migrated, first key made),
//    from the command to the first GraphQL answer;
//  - restart: `npm start` again on the same DATA_DIR;
//  - idle RSS of that embedded default (gateway and worker in one process) once it has settled;
//  - idle RSS of `npm run start:worker` against PostgreSQL (a fresh database on DATABASE_URL's server,
//    default 127.0.0.1:5432).
// Each process is stopped with SIGTERM. Prints one line per figure, then one JSON line with all of them.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = fileURLToPath(new URL('../', import.meta.url));
/** How long a process is left alone before its idle RSS is read. */
const SETTLE_MS = 8_000;
const ANSWER_TIMEOUT_MS = 120_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs `npm run <script>` with `env` added; its output is kept for error messages. */
function npmRun(script: string, env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn('npm', ['run', '--silent', script], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return { child, output: () => output };
}

/** Milliseconds from `startedAt` until `url` answers `check` with true. */
async function untilAnswered(url: string, check: (response: Response) => Promise<boolean>, startedAt: number, output: () => string) {
  const deadline = startedAt + ANSWER_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      if (await check(response)) return Date.now() - startedAt;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`No answer from ${url} within ${ANSWER_TIMEOUT_MS} ms; the process printed:\n${output()}`);
}

const answersGraphQL = async (response: Response) =>
  response.ok && ((await response.json()) as { data?: { __typename?: string } }).data?.__typename === 'Query';
const answersHealth = async (response: Response) => {
  await response.arrayBuffer();
  return response.status < 500;
};

/** The node process `npm run` ended up running (npm → sh → exec node), found among its descendants. */
function nodeProcessOf(npmPid: number, entry: string): number {
  const queue = [npmPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (cmdline[0]?.endsWith('node') && cmdline.includes(entry)) return pid;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (children) queue.push(...children.split(' ').map(Number));
    }
  }
  throw new Error(`No node process running ${entry} under npm (pid ${npmPid})`);
}

function residentMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024);
}

async function stop({ child, output }: ReturnType<typeof npmRun>): Promise<void> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const code = await exited;
  if (code !== 0) throw new Error(`npm exited ${code} after SIGTERM; it printed:\n${output()}`);
}

/** `npm start` on `dataDir` until its first GraphQL answer; with `settle`, also its RSS once idle. */
async function embeddedStart(dataDir: string, settle: boolean): Promise<{ seconds: number; idleRssMb?: number }> {
  const port = await freePort();
  const startedAt = Date.now();
  const run = npmRun('start', { DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn' });
  try {
    const ms = await untilAnswered(`http://127.0.0.1:${port}/graphql`, answersGraphQL, startedAt, run.output);
    let idleRssMb: number | undefined;
    if (settle) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      idleRssMb = residentMb(nodeProcessOf(run.child.pid!, 'build/server.js'));
    }
    return { seconds: ms / 1000, idleRssMb };
  } finally {
    await stop(run);
  }
}

/** `npm run start:worker` on a fresh database of the PostgreSQL server: seconds to its first answer, idle RSS. */
async function workerOnly(): Promise<{ seconds: number; idleRssMb: number }> {
  const serverUrl = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const databaseName = `asg_bench_startup_${process.pid}`;
  const databaseUrl = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString();
  const onServer = async (sql: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    await client.query(sql);
    await client.end();
  };
  await onServer(`CREATE DATABASE ${databaseName}`);
  const port = await freePort();
  try {
    const startedAt = Date.now();
    const run = npmRun('start:worker', {
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
    });
    try {
      const ms = await untilAnswered(`http://127.0.0.1:${port}/healthz`, answersHealth, startedAt, run.output);
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      return { seconds: ms / 1000, idleRssMb: residentMb(nodeProcessOf(run.child.pid!, 'build/worker.js')) };
    } finally {
      await stop(run);
    }
  } finally {
    await onServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  }
}

const dataDir = await mkdtemp(join(tmpdir(), 'asg-bench-startup-'));
try {
  const load = () => loadavg().map((value) => value.toFixed(2)).join(' ');
  const first = await embeddedStart(dataDir, false);
  console.log(`first start (fresh DATA_DIR): ${first.seconds.toFixed(1)} s to the first answer (target ≤ 10 s), load ${load()}`);
  const restart = await embeddedStart(dataDir, true);
  console.log(`restart: ${restart.seconds.toFixed(1)} s (target ≤ 5 s); idle RSS ${restart.idleRssMb} MB (target ≤ 300 MB), load ${load()}`);
  const worker = await workerOnly();
  console.log(`worker only: ${worker.seconds.toFixed(1)} s to /healthz; idle RSS ${worker.idleRssMb} MB (target ≤ 150 MB), load ${load()}`);
  console.log(
    JSON.stringify({
      firstStartSeconds: first.seconds,
      restartSeconds: restart.seconds,
      embeddedIdleRssMb: restart.idleRssMb,
      workerStartSeconds: worker.seconds,
      workerIdleRssMb: worker.idleRssMb,
      loadAverage: loadavg().map((value) => Number(value.toFixed(2))),
    }),
  );
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
