import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Cross-site request forgery protection for the dashboard's actions (double submit, signed).
 * Each browser gets a random cookie (HttpOnly, SameSite=Strict, scoped to the dashboard's path);
 * every form carries the HMAC of that cookie under the handler's secret. A POST must bring both,
 * and they must match, compared in constant time. A page of another site can neither read the
 * cookie nor compute the token, and SameSite=Strict keeps the cookie off its requests anyway.
 */

export const CSRF_COOKIE = 'cairn_csrf';
export const CSRF_FIELD = '_csrf';

const COOKIE_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export class Csrf {
  private readonly secret: Buffer;

  /** `secret`: share one across processes behind a load balancer; random per handler otherwise. */
  constructor(
    secret: string | Buffer | undefined,
    private readonly cookiePath: string,
  ) {
    this.secret = secret === undefined ? randomBytes(32) : Buffer.from(secret);
  }

  /**
   * The token for this browser's forms. Sets the cookie when the request came without a usable
   * one; the token then belongs to the new cookie.
   */
  token(req: IncomingMessage, res: ServerResponse): string {
    let id = cookie(req, CSRF_COOKIE);
    if (id === undefined || !COOKIE_SHAPE.test(id)) {
      id = randomBytes(32).toString('base64url');
      const secure = (req.socket as { encrypted?: boolean }).encrypted ? '; Secure' : '';
      res.appendHeader('Set-Cookie', `${CSRF_COOKIE}=${id}; Path=${this.cookiePath}; HttpOnly; SameSite=Strict${secure}`);
    }
    return this.sign(id);
  }

  /** Whether a POST carries this browser's cookie and the token made from it. */
  verify(req: IncomingMessage, submitted: string | undefined): boolean {
    const id = cookie(req, CSRF_COOKIE);
    if (id === undefined || !COOKIE_SHAPE.test(id) || submitted === undefined) return false;
    const expected = Buffer.from(this.sign(id));
    const given = Buffer.from(submitted);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private sign(id: string): string {
    return createHmac('sha256', this.secret).update(id).digest('base64url');
  }
}

/**
 * Whether a POST may come from this page's own origin: `Sec-Fetch-Site`, when sent, must say
 * same-origin, and an `Origin` header that names a host must name the one the request was made
 * to. Pages are served with `Referrer-Policy: no-referrer`, under which browsers send
 * `Origin: null` even for a same-origin form post, so "null" proves nothing either way: the
 * token and the SameSite=Strict cookie decide.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = req.headers.origin;
  if (origin === undefined || origin === 'null') return true;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const forwarded = req.headers['x-forwarded-host'];
  const hosts = [req.headers.host, ...(typeof forwarded === 'string' ? forwarded.split(',').map((h) => h.trim()) : [])];
  return hosts.some((h) => h !== undefined && h.toLowerCase() === host.toLowerCase());
}

/** One cookie's value from the request, or undefined. */
export function cookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
