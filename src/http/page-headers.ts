import { createHash } from 'node:crypto';
import fastifyHelmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

/** CSP directives in helmet's form (camelCase keys); nothing is allowed that is not listed. */
export type CspDirectives = Record<string, string[]>;

/**
 * The security headers of every HTML page mailgate serves (the admin UI and
 * the OAuth2 callback page), registered inside the page's own scope with
 * @fastify/helmet: a strict CSP with hashes of the inline style and script
 * (no 'unsafe-inline', no CDN), frame-ancestors 'none' and X-Frame-Options
 * DENY (no clickjacking of the Authorize and Retry buttons), nosniff,
 * same-origin referrers (the callback URL carries the authorization code),
 * HSTS only when publicUrl is https, and no caching of pages that show tokens' state.
 */
export async function registerPageHeaders(scope: FastifyInstance, o: { csp: CspDirectives; https: boolean }): Promise<void> {
  await scope.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      // No form-action: the admin UI's Authorize form is answered with a
      // redirect to the provider, which form-action 'self' would block.
      directives: { defaultSrc: ["'none'"], baseUri: ["'none'"], frameAncestors: ["'none'"], ...o.csp },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
    strictTransportSecurity: o.https ? { maxAge: 31_536_000, includeSubDomains: false } : false,
    crossOriginEmbedderPolicy: false,
  });
  scope.addHook('onRequest', async (_req, reply) => {
    void reply.header('cache-control', 'no-store');
  });
}

/** The CSP source for an inline <style> or <script> (CSP Level 2 hash). */
export function sha256Source(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}
