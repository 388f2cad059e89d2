import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** A login lasts this long; then the admin signs in again. */
export const SESSION_TTL_MS = 12 * 3_600_000;
export const SESSION_COOKIE = 'mailgate_session';
/** Double-submit token for the login form (there is no session yet to bind it to). */
export const LOGIN_CSRF_COOKIE = 'mailgate_login_csrf';

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface Session {
  id: string;
  /** Sent back in a hidden field by every form; checked on every POST. */
  csrf: string;
  expiresAt: number;
  /** A message shown once on the next page (post/redirect/get). */
  flash: Flash | null;
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time check of a form's CSRF token (its length is public: always 43 characters). */
export function csrfMatches(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Logins live in memory: a restart signs every admin out, which is fine for
 * a single daemon and means no session secret has to be stored anywhere.
 */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();

  constructor(private readonly now: () => number = Date.now) {}

  create(): Session {
    this.#prune();
    const s: Session = { id: randomToken(), csrf: randomToken(), expiresAt: this.now() + SESSION_TTL_MS, flash: null };
    this.#sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | null {
    if (!id) return null;
    const s = this.#sessions.get(id);
    if (!s) return null;
    if (s.expiresAt <= this.now()) {
      this.#sessions.delete(id);
      return null;
    }
    return s;
  }

  delete(id: string): void {
    this.#sessions.delete(id);
  }

  #prune(): void {
    const now = this.now();
    for (const [id, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(id);
  }
}

export function readCookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

export interface CookieOptions {
  path: string;
  /** Seconds; 0 deletes the cookie. Omitted: ends with the browser session. */
  maxAge?: number;
  sameSite: 'Strict' | 'Lax';
  secure: boolean;
}

/** Always HttpOnly: no script on the page ever needs these cookies. */
export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  return [
    `${name}=${encodeURIComponent(value)}`,
    `Path=${o.path}`,
    o.maxAge !== undefined ? `Max-Age=${o.maxAge}` : null,
    'HttpOnly',
    `SameSite=${o.sameSite}`,
    o.secure ? 'Secure' : null,
  ]
    .filter(Boolean)
    .join('; ');
}
