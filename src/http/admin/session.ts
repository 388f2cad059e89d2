import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AdminSessionFlash, AdminSessionRepo } from '../../store/admin-sessions.js';

/** A login lasts this long; then the admin signs in again. */
export const SESSION_TTL_MS = 12 * 3_600_000;
export const SESSION_COOKIE = 'mailgate_session';
/** Double-submit token for the login form (there is no session yet to bind it to). */
export const LOGIN_CSRF_COOKIE = 'mailgate_login_csrf';

export type Flash = AdminSessionFlash;

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
 * Logins live in the store (AdminSessionRepo), so a restart keeps admins
 * signed in and replicas share them; the store keeps only a hash of the id.
 * A session lasts SESSION_TTL_MS from sign-in (no sliding renewal). Expired
 * sessions are deleted when looked up, at each sign-in and by the hourly
 * retention job.
 */
export class SessionStore {
  /** The flash each loaded session had in the store, to write back only a change. */
  readonly #storedFlash = new WeakMap<Session, Flash | null>();

  constructor(
    private readonly repo: AdminSessionRepo,
    private readonly now: () => number = Date.now,
  ) {}

  async create(): Promise<Session> {
    const now = this.now();
    await this.repo.pruneExpired(now);
    const s: Session = { id: randomToken(), csrf: randomToken(), expiresAt: now + SESSION_TTL_MS, flash: null };
    await this.repo.create({ ...s, createdAt: now });
    this.#storedFlash.set(s, null);
    return s;
  }

  async get(id: string | undefined): Promise<Session | null> {
    if (!id) return null;
    const rec = await this.repo.get(id, this.now());
    if (!rec) return null;
    const s: Session = { id: rec.id, csrf: rec.csrf, expiresAt: rec.expiresAt, flash: rec.flash };
    this.#storedFlash.set(s, s.flash);
    return s;
  }

  /** Stores the flash a page set or took during the request, if it changed. */
  async saveFlash(s: Session): Promise<void> {
    if (this.#storedFlash.has(s) && this.#storedFlash.get(s) === s.flash) return;
    await this.repo.setFlash(s.id, s.flash);
    this.#storedFlash.set(s, s.flash);
  }

  async delete(id: string): Promise<void> {
    await this.repo.delete(id);
  }
}

/** A cookie of the request, as parsed by @fastify/cookie (an undecodable value stays raw: no session, never a 500). */
export function readCookie(req: FastifyRequest, name: string): string | undefined {
  return req.cookies[name];
}

export interface CookieOptions {
  path: string;
  /** Seconds; 0 deletes the cookie. Omitted: ends with the browser session. */
  maxAge?: number;
  sameSite: 'strict' | 'lax';
  secure: boolean;
}

/** Always HttpOnly: no script on the page ever needs these cookies. Several calls add several Set-Cookie headers. */
export function setCookie(reply: FastifyReply, name: string, value: string, o: CookieOptions): void {
  void reply.setCookie(name, value, { path: o.path, httpOnly: true, sameSite: o.sameSite, secure: o.secure, ...(o.maxAge !== undefined ? { maxAge: o.maxAge } : {}) });
}
