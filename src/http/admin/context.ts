import type { RenderFn } from '../../parse/parse-pool.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/types.js';
import { MailgateError } from '../../errors.js';
import type { OAuthFlows } from '../../oauth/flows.js';
import type { RelayStatusView } from '../../relay/status.js';
import type { TokenService } from '../../oauth/token-service.js';
import type { Store } from '../../store/store.js';
import type { AccountRouteDeps } from '../routes/accounts.js';
import type { Flash, Session } from './session.js';

/** What the admin UI works with: the same services the /v1 API calls. */
export interface AdminUiDeps {
  config: () => Config;
  /** The token that signs an admin in (the /v1 bearer token). */
  adminToken: string;
  store: Store;
  flows: OAuthFlows;
  tokens: TokenService;
  /** The dependencies of the /v1/accounts routes: status and connection tests. */
  accounts: AccountRouteDeps;
  /** Wakes the delivery worker after a retry was queued. */
  wake: () => void;
  /** The SMTP relay's clients and counts (null without a relay section); absent when the relay is not wired. */
  relay?: () => RelayStatusView | null;
  /** Builds a message's webhook body (the parse threads), for the delivery view; without it the view shows the stored fields only. */
  render?: RenderFn;
}

const sessions = new WeakMap<FastifyRequest, Session>();

export function attachSession(req: FastifyRequest, s: Session): void {
  sessions.set(req, s);
}

/** The session the guard attached, if any (none on the login routes and on refused requests). */
export function attachedSession(req: FastifyRequest): Session | null {
  return sessions.get(req) ?? null;
}

/** The signed-in session; the guard in index.ts guarantees one on every page but the login. */
export function sessionOf(req: FastifyRequest): Session {
  const s = sessions.get(req);
  if (!s) throw new MailgateError('UNAUTHORIZED', 'not signed in');
  return s;
}

export function sendPage(reply: FastifyReply, markup: string, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(markup);
}

/** Post/redirect/get: the message is shown once on the page redirected to. */
export function redirectWith(req: FastifyRequest, reply: FastifyReply, location: string, flash: Flash | null = null): FastifyReply {
  if (flash) sessionOf(req).flash = flash;
  return reply.code(303).header('location', location).send();
}

export function takeFlash(req: FastifyRequest): Flash | null {
  const s = sessionOf(req);
  const f = s.flash;
  s.flash = null;
  return f;
}

/** A form body, as parsed by the urlencoded parser in index.ts. */
export function formOf(req: FastifyRequest): Record<string, string> {
  return (req.body ?? {}) as Record<string, string>;
}

/** Cookies are Secure when the admin reaches mailgate over https. */
export function isSecure(deps: AdminUiDeps): boolean {
  return deps.config().server.publicUrl.startsWith('https:');
}
