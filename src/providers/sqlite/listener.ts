import { realpathSync } from 'node:fs';
import type { ChangeListener } from '../provider.js';

/**
 * SQLite has no notifications between processes, so writers wake waiters in their own process
 * through this bus, shared by every provider on the same file. Waiters in other processes rely on
 * their fallback poll.
 */
export class SqliteBus {
  private static readonly byFile = new Map<string, SqliteBus>();
  private readonly listeners = new Set<ChangeListener>();

  static for(path: string): SqliteBus {
    if (path === ':memory:') return new SqliteBus();
    let key = path;
    try {
      key = realpathSync(path);
    } catch {
      // The file may not exist yet; the path itself is then the key.
    }
    let bus = SqliteBus.byFile.get(key);
    if (!bus) {
      bus = new SqliteBus();
      SqliteBus.byFile.set(key, bus);
    }
    return bus;
  }

  subscribe(listener: ChangeListener): () => Promise<void> {
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
    };
  }

  /** Called after the change has committed. */
  emit(key: string): void {
    for (const listener of this.listeners) listener(key);
  }
}
