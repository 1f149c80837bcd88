import assert from 'node:assert/strict';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context, Engine, Logger } from '../src/index.js';

/** Workflows, servers and HTTP helpers shared by the dashboard's tests. */

/** Markup that must only ever show up as text. */
export const EVIL = '<img src=x onerror=alert(1)>';

export interface Fixture {
  /** While false, charge's `pay` step fails. */
  up: boolean;
}

/** Registers the workflows the tests drive: a charge that fails while payments are down, a wait for a message, and one named with markup. */
export function register(engine: Engine, fixture: Fixture) {
  const charge = engine.workflow('charge', async (ctx: Context, cents: number) => {
    await ctx.step('reserve', () => ({ reserved: cents }));
    return ctx.step('pay', () => {
      if (!fixture.up) throw new Error('payments down');
      return { paid: cents };
    });
  });
  const approval = engine.workflow('approval', async (ctx: Context) => ctx.recv<string>('go', 600_000));
  const evil = engine.workflow(EVIL, async (ctx: Context) => ctx.step(EVIL, () => ({ note: EVIL })));
  return { charge, approval, evil };
}

/** Servers started by a test, closed by `closeServers`. */
const servers = new Set<Server>();

/** Serves `listener` on 127.0.0.1 at a free port; returns its origin (`http://127.0.0.1:port`). */
export async function listen(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.add(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function closeServers(): Promise<void> {
  const all = [...servers];
  servers.clear();
  await Promise.all(
    all.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  );
}

/** A browser's CSRF cookie and the token of its forms, read from a page of the dashboard. */
export interface Session {
  cookie: string;
  token: string;
}

export async function session(pageUrl: string): Promise<Session> {
  const res = await fetch(pageUrl);
  assert.equal(res.status, 200, `GET ${pageUrl}`);
  const set = res.headers.getSetCookie().find((c) => c.startsWith('cairn_csrf='));
  assert.ok(set, 'the page sets the CSRF cookie');
  const token = /name="_csrf" value="([^"]+)"/.exec(await res.text())?.[1];
  assert.ok(token, 'the page holds a form with the CSRF token');
  return { cookie: set.split(';')[0]!, token };
}

/** Posts a form the way a browser would (no redirect followed). */
export async function post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** A logger that keeps what it is given. */
export function recordingLogger(): Logger & { errors: Array<{ obj: object; msg?: string }> } {
  const errors: Array<{ obj: object; msg?: string }> = [];
  return {
    errors,
    info() {},
    warn() {},
    error(obj: object, msg?: string) {
      errors.push({ obj, ...(msg !== undefined && { msg }) });
    },
  };
}
