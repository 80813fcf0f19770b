import { z } from 'zod';

const flag = z.enum(['true', 'false']).transform((value) => value === 'true');

/** Every setting the app reads from the environment, validated once at start. */
const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  /** Unset: the embedded default, a PostgreSQL served by PGlite from DATA_DIR. */
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATA_DIR: z.string().min(1).default('./.data'),
  /** The embedded default's loopback ports (127.0.0.1): its data, and Agenda's jobs; 0: any free port. */
  EMBEDDED_DATABASE_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  EMBEDDED_JOBS_DATABASE_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** Set: Agenda keeps its jobs in MongoDB; otherwise in the PostgreSQL database. */
  MONGODB_URL: z.url({ protocol: /^mongodb(\+srv)?$/ }).optional(),
  /** Set: subscription events fan out through Redis to every gateway instance. */
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  /** 32 bytes, base64: the AES-256-GCM key for destination credentials. Unset: kept in DATA_DIR. */
  SECRETS_KEY: z
    .string()
    .refine((value) => Buffer.from(value, 'base64').length === 32, 'must be 32 bytes encoded as base64')
    .optional(),
  /** Which roles this process plays; both by default. */
  ROLES: z
    .string()
    .default('gateway,worker')
    .transform((value) => value.split(',').map((role) => role.trim()))
    .pipe(z.array(z.enum(['gateway', 'worker'])).min(1)),
  /** How often the worker polls for due jobs when database notifications are unavailable (ms). */
  JOB_POLL_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** How long a running sync run (and its job's lock) is held without a heartbeat: a killed
   * worker's run is resumed by another worker once this has passed. */
  RUN_LEASE_SECONDS: z.coerce.number().int().min(2).max(3600).default(60),
  /** A sync whose record (or, on its first run, whose static audience) spans at least this many contact
   * ids is diffed in two halves at once, on two connections (never on the embedded database): the merge
   * join of a million members on each side takes about half a second of one core, most of a 1%-churn
   * run's time. */
  DIFF_SPLIT_SPAN: z.coerce.number().int().min(1).default(100_000),
  /** Retries of a throttled or transiently failing platform call, and the first backoff delay (it doubles). */
  PLATFORM_RETRIES: z.coerce.number().int().min(0).max(20).default(6),
  PLATFORM_RETRY_MIN_MS: z.coerce.number().int().min(1).max(60_000).default(1000),
  /** How often workers look for platform jobs (Google Ads API uploads) due a check; a job is first checked
   * this long after it started, then less and less often (at most every 30 minutes). */
  PLATFORM_JOB_POLL_MS: z.coerce.number().int().min(50).max(3_600_000).default(60_000),
  /** `true` lets webhooks, task notifications and (custom) platform URLs reach private, loopback and link-local
   * addresses (and plain http on loopback). Off by default so that no URL reaches the gateway's own network. */
  ALLOW_PRIVATE_URLS: flag.optional(),
  /** The former name of ALLOW_PRIVATE_URLS, still read when that is unset. */
  ALLOW_PRIVATE_WEBHOOK_URLS: flag.optional(),
  /** `true` lets platform destinations replace their API's URLs (`baseUrl`, Google's `tokenUrl`): staging, a
   * proxy, tests. Off by default: a destination talks only to its platform's own hosts. */
  ALLOW_CUSTOM_PLATFORM_URLS: flag.default(false),
  /** At least 32 characters: `Authorization: Bearer <ADMIN_TOKEN>` creates workspaces and manages API keys of
   * any workspace. Unset: no admin over the API (create keys with `npm run api-key`). */
  ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Limits on one GraphQL operation, checked before it runs (persisted documents are exempt): depth of the
   * selection (fragments flattened), cost (the objects it can return: page sizes, variables included, times
   * each item's objects), aliases, directives and lexical tokens. */
  MAX_QUERY_DEPTH: z.coerce.number().int().min(1).default(10),
  MAX_QUERY_COST: z.coerce.number().int().min(1).default(5000),
  MAX_QUERY_ALIASES: z.coerce.number().int().min(0).default(15),
  MAX_QUERY_DIRECTIVES: z.coerce.number().int().min(0).default(50),
  MAX_QUERY_TOKENS: z.coerce.number().int().min(1).default(2000),
  /** Largest HTTP request body (and WebSocket message) in bytes; larger ones are refused with 413 as they
   * stream in. 32 MiB holds an addAudienceMembers call with 100,000 members. */
  MAX_REQUEST_BODY_BYTES: z.coerce.number().int().min(1024).default(32 * 1024 * 1024),
  /** Operations one WebSocket connection may have open at once; the next one is refused. */
  MAX_SUBSCRIPTIONS_PER_SOCKET: z.coerce.number().int().min(1).default(20),
  /** Operations each API key may run per RATE_LIMIT_DURATION_SECONDS, over every transport and gateway
   * (counted in Redis when REDIS_URL is set); 0 turns rate limiting off. */
  RATE_LIMIT_POINTS: z.coerce.number().int().min(0).default(1000),
  RATE_LIMIT_DURATION_SECONDS: z.coerce.number().int().min(1).default(60),
  /** GraphQL HTTP operations a gateway handles at once; later ones wait their turn, and one that waited
   * MAX_QUEUE_WAIT_MS is answered 503 OVERLOADED with Retry-After (server-sent event streams not counted). */
  MAX_CONCURRENT_REQUESTS: z.coerce.number().int().min(1).default(8),
  MAX_QUEUE_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
  /** Query answers a gateway keeps (per API key, document and variables) until what they read changes, as
   * PostgreSQL notifies it; 0 turns the cache off. Not on the embedded database, which answers every query fresh. */
  RESPONSE_CACHE_ENTRIES: z.coerce.number().int().min(0).default(500),
  /** Trusted documents: `allow` runs the persisted documents of the manifest by id (`documentId` or
   * `extensions.persistedQuery`), exempt from the operation limits, and any other document within them;
   * `only` runs the persisted documents alone; `off` understands no ids. */
  PERSISTED_OPERATIONS: z.enum(['off', 'allow', 'only']).default('allow'),
  /** The manifest of persisted documents (`{ "sha256:<hex>": "<document>" }`); the project's own by default. */
  PERSISTED_DOCUMENTS_FILE: z.string().min(1).optional(),
  /** `false` turns off the GraphiQL page at GET /graphql. */
  GRAPHIQL: z.enum(['true', 'false']).default('true').transform((value) => value === 'true'),
  /** `false` turns off the console (the web pages at /console) on gateways. */
  CONSOLE: z.enum(['true', 'false']).default('true').transform((value) => value === 'true'),
  /** `false` refuses introspection queries (and "did you mean" suggestions), for production. */
  INTROSPECTION: z.enum(['true', 'false']).default('true').transform((value) => value === 'true'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  NODE_ENV: z.string().default('development'),
});

type ParsedConfig = z.infer<typeof configSchema>;
export type Config = Omit<ParsedConfig, 'ALLOW_PRIVATE_URLS' | 'ALLOW_PRIVATE_WEBHOOK_URLS'> & { ALLOW_PRIVATE_URLS: boolean };

/** The names of every environment variable the app reads. */
export const CONFIG_VARIABLES = Object.keys(configSchema.shape);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment; throws a ConfigError naming each bad variable. Empty values count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration — ${problems.join('; ')}`);
  }
  const { ALLOW_PRIVATE_URLS: allowPrivate, ALLOW_PRIVATE_WEBHOOK_URLS: formerName, ...config } = parsed.data;
  if (allowPrivate !== undefined && formerName !== undefined && allowPrivate !== formerName) {
    throw new ConfigError(
      'Invalid configuration — ALLOW_PRIVATE_WEBHOOK_URLS: is the former name of ALLOW_PRIVATE_URLS, which says otherwise; set only ALLOW_PRIVATE_URLS',
    );
  }
  return { ...config, ALLOW_PRIVATE_URLS: allowPrivate ?? formerName ?? false };
}
