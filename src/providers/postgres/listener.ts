import pg from 'pg';
import type { ChangeListener } from '../provider.js';

/**
 * One LISTEN connection per provider, multiplexing every waiter of the engine. It connects on the
 * first subscription, reconnects with backoff when the connection drops, and after a reconnect
 * wakes every listener with '*' because notifications sent meanwhile are lost.
 */
export class PostgresListener {
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private readonly listeners = new Set<ChangeListener>();
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connectionString: string | undefined,
    private readonly poolConfig: pg.PoolConfig | undefined,
    private readonly channel: string,
  ) {}

  async subscribe(listener: ChangeListener): Promise<() => Promise<void>> {
    this.listeners.add(listener);
    await this.connect();
    return async () => {
      this.listeners.delete(listener);
    };
  }

  private connect(): Promise<void> {
    if (this.client || this.closed) return Promise.resolve();
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<void> {
    const client = new pg.Client(this.connectionString === undefined ? this.poolConfig : { connectionString: this.connectionString });
    client.on('notification', (n) => {
      const payload = n.payload;
      if (payload === undefined) return;
      // A statement that ended many workflows sends their keys together, as a JSON array.
      if (payload.startsWith('[')) for (const key of keysOf(payload)) this.emit(key);
      else this.emit(payload);
    });
    client.on('error', () => this.drop(client));
    client.on('end', () => this.drop(client));
    await client.connect();
    await client.query(`LISTEN "${this.channel}"`);
    if (this.closed) {
      await client.end();
      return;
    }
    this.client = client;
  }

  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.connect().then(
        () => this.emit('*'),
        () => this.drop(client),
      );
    }, 500);
  }

  private emit(key: string): void {
    for (const listener of this.listeners) listener(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.connecting?.catch(() => undefined);
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
