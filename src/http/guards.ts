import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { isLoopbackHost } from '../config/hosts.js';
import type { ServerConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { bearerMatches } from './admin-auth.js';
import type { AuthThrottle } from '../runtime/auth-throttle.js';

/**
 * The HTTP edge's guards, each an onRequest hook that a route scope adds for
 * itself (server.ts): authentication is decided by the scope a route was
 * registered in, never by the text of the URL, which can be spelled many
 * ways (`/%761/accounts` routes to `/v1/accounts`).
 */

/** Where a failed token check happened, for logs and the metric label. */
export type AuthSurface = 'api' | 'admin' | 'metrics';


export interface AuthEvents {
  failed: (surface: AuthSurface) => void;
  lockedOut: (surface: AuthSurface) => void;
}

/**
 * A token check with the throttle around it. `check` returns true when the
 * caller may go on; otherwise it has answered (401 or 429) itself.
 */
export class TokenGate {
  constructor(
    private readonly deps: { throttle: AuthThrottle; logger: Logger; events?: AuthEvents },
  ) {}

  /** Seconds to tell a locked-out client (Retry-After), or null when it may try. */
  retryAfterSeconds(req: FastifyRequest): number | null {
    const ms = this.deps.throttle.lockedFor(req.ip);
    return ms > 0 ? Math.ceil(ms / 1000) : null;
  }

  /**
   * Evaluates `ok` (the token comparison) unless the address is locked out;
   * records the outcome. A request that presents no token at all is refused
   * but not counted: it guesses nothing, and counting it would lock out a
   * client that merely forgot the header.
   */
  attempt(req: FastifyRequest, surface: AuthSurface, presented: boolean, ok: () => boolean): 'ok' | 'denied' | 'locked' {
    if (this.retryAfterSeconds(req) !== null) return 'locked';
    if (!presented) return 'denied';
    if (ok()) {
      this.deps.throttle.success(req.ip);
      return 'ok';
    }
    this.deps.events?.failed(surface);
    const lockout = this.deps.throttle.failure(req.ip);
    if (lockout > 0) {
      this.deps.events?.lockedOut(surface);
      this.deps.logger.warn({ ip: req.ip, surface, lockedForMs: lockout }, 'repeated wrong tokens from this address; it is locked out for a while');
    } else {
      this.deps.logger.info({ ip: req.ip, surface }, 'request with a missing or wrong token refused');
    }
    return 'denied';
  }

  /** An onRequest hook: `Authorization: Bearer <token()>` or 401/429. */
  bearer(surface: AuthSurface, token: () => string): onRequestAsyncHookHandler {
    return async (req: FastifyRequest, reply: FastifyReply) => {
      const header = req.headers.authorization;
      const outcome = this.attempt(req, surface, typeof header === 'string' && header.trim() !== '', () => bearerMatches(header, token()));
      if (outcome === 'ok') return;
      if (outcome === 'locked') return tooManyAttempts(reply, this.retryAfterSeconds(req) ?? 1);
      const which = surface === 'metrics' ? 'metrics' : 'admin';
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: `missing or wrong ${which} token`, code: 'UNAUTHORIZED' });
    };
  }
}

export function tooManyAttempts(reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  return reply
    .code(429)
    .header('retry-after', String(retryAfterSeconds))
    .send({ error: `too many wrong tokens from this address; try again in ${retryAfterSeconds} s`, code: 'TOO_MANY_ATTEMPTS' });
}

// ---- Host header ----

/** One allowed `Host`: a name (any port) or a name with its port. */
interface HostRule {
  host: string;
  port: number | null;
}

export interface HostPolicy {
  /** A wildcard listener (0.0.0.0, ::): any IP literal is fine, a DNS rebinding needs a name. */
  anyIpLiteral: boolean;
  rules: HostRule[];
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

function parseHostPort(value: string): HostRule | null {
  const v = value.trim().toLowerCase();
  const m = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(v) ?? /^([^:[\]/\s]+)(?::(\d{1,5}))?$/.exec(v);
  if (!m?.[1]) return null;
  return { host: m[1], port: m[2] === undefined ? null : Number(m[2]) };
}

/**
 * The names this server answers to on /v1, /admin and /oauth2: its listen
 * address (and, on loopback, localhost), its publicUrl, and
 * `server.allowedHosts`. Closes DNS rebinding: a page on evil.example whose
 * name resolves to 127.0.0.1 sends `Host: evil.example`.
 */
export function hostPolicyFor(server: ServerConfig): HostPolicy {
  const rules: HostRule[] = [];
  const { host, port } = server.listen;
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  if (!wildcard) rules.push({ host: host.toLowerCase(), port });
  if (isLoopbackHost(host) || wildcard) for (const name of LOOPBACK_NAMES) rules.push({ host: name, port });
  try {
    const u = new URL(server.publicUrl);
    const defaultPort = u.protocol === 'https:' ? 443 : 80;
    const h = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const p = u.port === '' ? defaultPort : Number(u.port);
    rules.push({ host: h, port: p });
  } catch {
    // publicUrl was validated by the config schema
  }
  for (const entry of server.allowedHosts) {
    const r = parseHostPort(entry);
    if (r) rules.push(r);
  }
  return { anyIpLiteral: wildcard, rules };
}

/** Whether a request's Host header names this server. */
export function hostAllowed(header: string | undefined, policy: HostPolicy): boolean {
  if (!header) return false;
  const h = parseHostPort(header);
  if (!h) return false;
  if (policy.anyIpLiteral && isIP(h.host) !== 0) return true;
  // No port in Host means the scheme's default: 80, or 443 behind a TLS proxy.
  const portMatches = (r: HostRule) => r.port === null || (h.port === null ? r.port === 80 || r.port === 443 : r.port === h.port);
  return policy.rules.some((r) => r.host === h.host && portMatches(r));
}

/** An onRequest hook refusing requests for another host name (421 Misdirected Request, RFC 9110 §15.5.20). */
export function hostGuard(policy: () => HostPolicy, logger: { warn: (obj: object, msg: string) => void }): onRequestAsyncHookHandler {
  return async (req, reply) => {
    if (hostAllowed(req.headers.host, policy())) return;
    logger.warn({ ip: req.ip, host: req.headers.host ?? null }, 'request for a host name this server does not answer to refused');
    return reply.code(421).send({
      error: `this server does not answer to the host name ${JSON.stringify(req.headers.host ?? '')}; add it to server.allowedHosts if it is yours`,
      code: 'HOST_NOT_ALLOWED',
    });
  };
}
