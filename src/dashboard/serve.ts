import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvalidArgumentError } from '../engine/errors.js';
import { describe } from '../engine/validate.js';
import { dashboardHandler, type DashboardOptions } from './handler.js';

export interface ServeDashboardOptions extends Omit<DashboardOptions, 'basePath'> {
  /** Default `/`. */
  basePath?: string;
  /** The address to listen on (default `127.0.0.1`: this machine only). */
  host?: string;
  /** The port (default 0: any free port; `url` tells which). */
  port?: number;
}

export interface ServedDashboard {
  /** Where the dashboard answers, such as `http://127.0.0.1:4000/`. */
  url: string;
  /** Stops listening, ends open connections, and closes the Client the dashboard opened. */
  close(): Promise<void>;
}

/**
 * Serves the dashboard on a server of its own, bound to 127.0.0.1 unless `host` says otherwise:
 * what `cairn dashboard` runs. Anyone who can reach the port can use the dashboard's actions, so
 * give an `auth` function (or `readOnly: true`) before binding to another address.
 *
 * @example
 * const { url, close } = await serveDashboard({ database: 'sqlite:./app.db', port: 4000 });
 * console.log(`dashboard at ${url}`);
 */
export async function serveDashboard(options: ServeDashboardOptions): Promise<ServedDashboard> {
  const { host = '127.0.0.1', port = 0, basePath = '/', ...rest } = options ?? ({} as ServeDashboardOptions);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError('port', `port must be a whole number from 0 to 65535, got ${describe(port)}`);
  }
  if (typeof host !== 'string' || host === '') throw new InvalidArgumentError('host', `host must be a non-empty string, got ${describe(host)}`);
  const handler = dashboardHandler({ ...rest, basePath });
  const server = createServer(handler);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await handler.close();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  const path = basePath.replace(/\/+$/, '');
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shown}:${address.port}${path}/`,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await handler.close();
      })();
      return closing;
    },
  };
}
