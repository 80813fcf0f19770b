import pg from 'pg';
import { logger } from './logger.js';

/** The channel the database's triggers notify on (migration api_change_notifications). */
const CHANNEL = 'api_change';
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;
/** A round trip slower than this counts as a lost connection (a stopped server, a partition): the
 * query that waited is answered fresh, and the connection replaced. */
const ROUND_TRIP_TIMEOUT_MS = 2_000;

export interface ChangeNotifications {
  /** True while changes are heard: the connection is up and listening. */
  readonly listening: boolean;
  /**
   * Resolves once every change committed before the call has been passed to `onChange`: a round trip
   * on the listening connection, before whose answer PostgreSQL sends the notifications it holds for
   * it (postgres.c, "Process incoming notifies ... before ReadyForQuery"). Calls made while one is under
   * way share the next. Rejects when the connection is lost, or answers in no less than 2 s.
   */
  heardUpToNow(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Hears, on a connection of its own, every committed change to what the API reads: `onChange` gets
 * the workspace's id, or null for "anything may have changed" (a TRUNCATE, and each time the
 * connection is lost or listening again: what committed meanwhile was not heard). Reconnects by itself.
 */
export function listenForChanges(databaseUrl: string, onChange: (workspaceId: string | null) => void): ChangeNotifications {
  let client: pg.Client | null = null;
  let listening = false;
  let stopped = false;
  let retryMs = RECONNECT_MIN_MS;
  let retry: NodeJS.Timeout | undefined;

  const lost = (connection: pg.Client, error?: Error) => {
    if (client !== connection) return;
    client = null;
    if (listening && !stopped) logger.warn({ err: error }, 'Lost the database connection that hears changes; reconnecting');
    listening = false;
    onChange(null);
    void connection.end().catch(() => {});
    if (!stopped) {
      retry = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
    }
  };

  async function connect(): Promise<void> {
    const connection = new pg.Client({
      connectionString: databaseUrl,
      application_name: 'asg-change-listener',
      keepAlive: true,
      query_timeout: ROUND_TRIP_TIMEOUT_MS,
    });
    client = connection;
    connection.on('error', (error) => lost(connection, error));
    connection.on('end', () => lost(connection));
    connection.on('notification', ({ channel, payload }) => {
      if (channel === CHANNEL) onChange(payload ? payload : null);
    });
    try {
      await connection.connect();
      await connection.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      lost(connection, error as Error);
      return;
    }
    if (client !== connection || stopped) return;
    onChange(null);
    listening = true;
    retryMs = RECONNECT_MIN_MS;
  }

  let roundTrip: Promise<void> | null = null;
  let nextRoundTrip: Promise<void> | null = null;
  const heardUpToNow = (): Promise<void> => {
    const connection = client;
    if (!connection || !listening) return Promise.reject(new Error('Changes are not being heard'));
    if (!roundTrip) {
      roundTrip = connection.query('SELECT 1').then(
        () => {
          roundTrip = null;
        },
        (error: Error) => {
          roundTrip = null;
          lost(connection, error);
          throw error;
        },
      );
      return roundTrip;
    }
    // The round trip under way may have started before this call: wait for the one after it.
    nextRoundTrip ??= roundTrip
      .catch(() => {})
      .then(() => {
        nextRoundTrip = null;
        return heardUpToNow();
      });
    return nextRoundTrip;
  };

  void connect();
  return {
    get listening() {
      return listening;
    },
    heardUpToNow,
    async stop() {
      stopped = true;
      clearTimeout(retry);
      listening = false;
      const connection = client;
      client = null;
      await connection?.end().catch(() => {});
    },
  };
}
