import { isIP } from 'node:net';

/**
 * Whether a host name or address is this machine's loopback: traffic to it
 * never crosses a network, so cleartext there is not a leak (and the
 * defaults for requireTLS and the cleartext warnings depend on it).
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || h === '0:0:0:0:0:0:0:1';
}

/** True for an http:// URL whose host is not loopback (secrets would cross the network in clear). */
export function isCleartextRemote(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' && !isLoopbackHost(u.hostname);
  } catch {
    return false;
  }
}
