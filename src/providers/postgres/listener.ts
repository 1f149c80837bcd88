import pg from 'pg';
import type { ChangeListener } from '../provider.js';

/** The first pause before connecting again after the LISTEN connection was lost or refused. */
const FIRST_RETRY_MS = 100;
/** The longest pause between attempts, so the connection is back within about a second of the server. */
const MAX_RETRY_MS = 1_000;

/**
 * One LISTEN connection per provider, multiplexing every waiter of the engine. It connects on the
 * first subscription. When the connection drops, or cannot be made (the server is down or
 * restarting), it tries again with backoff (100 ms doubling to 1 s) for as long as the provider is
 * open; after each reconnect it wakes every listener with '*', because notifications sent
 * meanwhile are lost. Subscribing never fails: while there is no connection, waiters rely on their
 * fallback poll until the connection is back.
 */
export class PostgresListener {
  private client: pg.Client | undefined;
  private connecting: Promise<boolean> | undefined;
  private readonly listeners = new Set<ChangeListener>();
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = FIRST_RETRY_MS;

  constructor(
    /** How to connect: the provider's URL and connect timeout, or the options of the pool it was given. */
    private readonly config: pg.ClientConfig | undefined,
    private readonly channel: string,
  ) {}

  /** Adds a listener; resolves once listening, or once the first attempt to connect failed (retried in the background). */
  async subscribe(listener: ChangeListener): Promise<() => Promise<void>> {
    this.listeners.add(listener);
    await this.connect();
    return async () => {
      this.listeners.delete(listener);
    };
  }

  /** Whether the LISTEN connection is up (instrumentation, tests). */
  get listening(): boolean {
    return this.client !== undefined;
  }

  /** Connects unless connected or connecting; true once listening. A failure schedules another attempt. */
  private connect(): Promise<boolean> {
    if (this.client) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    this.connecting ??= this.open().then(
      (ok) => {
        this.connecting = undefined;
        return ok;
      },
      () => {
        this.connecting = undefined;
        this.retry();
        return false;
      },
    );
    return this.connecting;
  }

  private async open(): Promise<boolean> {
    // Keep-alive probes notice a connection that died without a word (a host gone, a partition).
    const client = new pg.Client({ ...this.config, keepAlive: true });
    client.on('notification', (n) => {
      const payload = n.payload;
      if (payload === undefined) return;
      // A statement that ended many workflows sends their keys together, as a JSON array.
      if (payload.startsWith('[')) for (const key of keysOf(payload)) this.emit(key);
      else this.emit(payload);
    });
    // Always listened for: an unhandled 'error' event would end the process.
    client.on('error', () => this.drop(client));
    client.on('end', () => this.drop(client));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
    } catch (err) {
      client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return false;
    }
    this.client = client;
    this.retryDelay = FIRST_RETRY_MS;
    return true;
  }

  /** The connection in use failed or ended: forget it and connect again. */
  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    this.retry();
  }

  /** Tries to connect again after a pause that doubles on each failure, until connected or closed. */
  private retry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(delay * 2, MAX_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect().then((ok) => {
        if (ok) this.emit('*');
      });
    }, delay);
    // Reconnecting alone does not keep a process alive; a waiter's own timer does.
    this.retryTimer.unref();
  }

  private emit(key: string): void {
    for (const listener of this.listeners) listener(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

/** The keys of a JSON-array payload; anything else on the channel wakes every waiter to look again. */
function keysOf(payload: string): string[] {
  try {
    const keys: unknown = JSON.parse(payload);
    if (Array.isArray(keys) && keys.every((k) => typeof k === 'string')) return keys as string[];
  } catch {
    // Not ours: fall through.
  }
  return ['*'];
}
