import { domainToASCII, domainToUnicode } from 'node:url';
import type { RelayClient } from './types.js';

/**
 * One spelling per address for comparing senders: lower case, and the domain
 * in Unicode (smtp-server hands over `xn--` domains decoded, while an admin
 * may write either form in allowedFrom).
 */
export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  if (at <= 0) return a;
  const domain = a.slice(at + 1);
  if (domain.startsWith('[')) return a;
  return `${a.slice(0, at)}@${domainToUnicode(domain) || domain}`;
}

/** Whether the client may use `address` as its envelope sender; the null sender `<>` never is. */
export function senderAllowed(client: Pick<RelayClient, 'allowedFrom'>, address: string): boolean {
  if (address === '') return false;
  const a = normalizeAddress(address);
  return client.allowedFrom.some((x) => normalizeAddress(x) === a);
}

/** The domain for a `Message-ID` we add: the sender's, in ASCII (an id must be ASCII); an address literal as it is. */
export function messageIdDomain(sender: string): string {
  const domain = sender.slice(sender.lastIndexOf('@') + 1);
  if (/^\[[0-9A-Za-z.:]+\]$/.test(domain)) return domain;
  return domainToASCII(domain) || 'mailgate.invalid';
}
