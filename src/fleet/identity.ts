import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** Where this process runs, as executors record it. */
export interface ProcessIdentity {
  hostname: string;
  /**
   * The host and its process-id namespace (Linux), so two executors with the same key see the
   * same pids: one can tell from the other's pid whether it still runs. Containers sharing a
   * host name but not a pid namespace get different keys.
   */
  hostKey: string;
  pid: number;
  /** When this process started, on its own clock (epoch ms). */
  startedAt: number;
}

let engines = 0;

export function processIdentity(): ProcessIdentity {
  const host = hostname();
  let namespace = '';
  try {
    namespace = readlinkSync('/proc/self/ns/pid');
  } catch {
    // Not Linux, or no /proc: the host name alone.
  }
  return {
    hostname: host,
    hostKey: namespace === '' ? host : `${host}/${namespace}`,
    pid: process.pid,
    startedAt: Math.floor(Date.now() - process.uptime() * 1000),
  };
}

/**
 * The default executor id: the host name and pid, so every process is its own executor, with a
 * counter for a second engine in the same process.
 */
export function defaultExecutorId(): string {
  engines++;
  const base = `${hostname()}:${process.pid}`;
  return engines === 1 ? base : `${base}:${engines}`;
}

/**
 * Whether the process of a neighbour executor (same host key) is gone: its pid no longer exists,
 * or it is this process's own pid but the executor started before this process did (a restart
 * that got the same pid, as a container's pid 1 does).
 */
export function neighbourGone(me: ProcessIdentity, neighbour: { pid: number; startedAt: number }): boolean {
  if (neighbour.pid === me.pid) return neighbour.startedAt < me.startedAt - 1_000;
  if (neighbour.pid <= 0) return false;
  try {
    process.kill(neighbour.pid, 0);
    return false;
  } catch (err) {
    // EPERM: the pid exists but belongs to another user; only ESRCH says it is gone.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
