import { createSecureContext } from 'node:tls';
import { isLoopbackHost } from '../config/hosts.js';
import { MailgateError } from '../errors.js';
import { parseRelayPasswordHash } from './passwords.js';
import type { RelayConfig } from './types.js';

/** A problem with the relay section, at a config path (`['relay', 'clients', 0, 'account']`) buildConfig can turn into file:line:col. */
export interface RelayConfigProblem {
  path: (string | number)[];
  message: string;
}

/** What the relay check needs to know about an account. */
export interface RelayAccountInfo {
  name: string;
  hasOutgoing: boolean;
}

/**
 * The relay refuses to start with a config it cannot run safely. It carries
 * every problem (CONFIG_INVALID, so the CLI exits with the bad-input code);
 * the message names each key, e.g. `relay.tls`.
 */
export class RelayConfigError extends MailgateError {
  readonly problems: RelayConfigProblem[];
  constructor(problems: RelayConfigProblem[]) {
    super('CONFIG_INVALID', `the relay configuration is invalid:\n${problems.map((p) => `${dotted(p.path)}: ${p.message}`).join('\n')}`, {
      details: { problems },
    });
    this.name = 'RelayConfigError';
    this.problems = problems;
  }
}

export function dotted(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * Everything wrong with a resolved relay config, all at once. With
 * `accounts`, also the cross-references (an unknown account, an account
 * without `outgoing`); buildConfig passes them, the listener itself does not
 * know accounts.
 */
export function relayConfigProblems(config: RelayConfig, accounts?: readonly RelayAccountInfo[]): RelayConfigProblem[] {
  const problems: RelayConfigProblem[] = [];
  const at = (path: (string | number)[], message: string) => problems.push({ path: ['relay', ...path], message });
  const { host, port } = config.listen;
  if (!Number.isInteger(port) || port < 0 || port > 65535) at(['listen'], `port ${port} is not a TCP port`);
  if (!config.tls && !isLoopbackHost(host)) {
    // RFC 4954 §4: AUTH PLAIN and LOGIN send the password in clear; off loopback it must travel inside STARTTLS.
    at(
      ['tls'],
      `relay.listen is ${host}, which is not loopback, so passwords would cross the network in clear: ` +
        'set relay.tls (certFile and keyFile) to offer STARTTLS, or listen on 127.0.0.1',
    );
  }
  if (config.tls) {
    try {
      // Parses both PEMs and checks that the key belongs to the certificate, as the first STARTTLS would.
      createSecureContext({ cert: config.tls.cert, key: config.tls.key });
    } catch (err) {
      at(['tls'], `the certificate and key cannot be used together (${err instanceof Error ? err.message : String(err)}); give a PEM certificate and its unencrypted PEM key`);
    }
  }
  if (!Number.isInteger(config.maxMessageSizeBytes) || config.maxMessageSizeBytes < 1) {
    at(['maxMessageSize'], 'must be at least 1 byte (e.g. 25MB)');
  }
  const names = new Map<string, number>();
  const usernames = new Map<string, number>();
  config.clients.forEach((c, i) => {
    const p = (key: string, message: string) => at(['clients', i, key], message);
    const sameName = names.get(c.name);
    if (sameName !== undefined) p('name', `client ${c.name} is also relay.clients[${sameName}]; names must be unique`);
    else names.set(c.name, i);
    if (c.username === '') p('username', 'must not be empty');
    const sameUser = usernames.get(c.username);
    if (sameUser !== undefined) p('username', `username ${c.username} is also used by relay.clients[${sameUser}]; a login must name one client`);
    else usernames.set(c.username, i);
    if (c.password !== undefined && c.passwordHash !== undefined) p('password', 'give password (or passwordFile) or passwordHash, not both');
    else if (c.passwordHash !== undefined) {
      if (!parseRelayPasswordHash(c.passwordHash)) p('passwordHash', 'is not a hash made by mailgate ($scrypt$ln=…,r=…,p=…$salt$hash)');
    } else if (c.password === undefined || c.password === '') p('password', 'set password or passwordFile (the application logs in with it)');
    if (c.allowedFrom.length === 0) p('allowedFrom', 'list at least one sender address (the default is the account email)');
    c.allowedFrom.forEach((a, j) => {
      if (!/^[^@\s]+@[^@\s]+$/.test(a)) at(['clients', i, 'allowedFrom', j], `${JSON.stringify(a)} is not an email address`);
    });
    if (accounts) {
      const acc = accounts.find((a) => a.name === c.account);
      if (!acc) p('account', `no account named ${c.account}`);
      else if (!acc.hasOutgoing) p('account', `account ${c.account} has no outgoing server; the relay sends this client's mail through it`);
    }
  });
  return problems;
}

/** Throws RelayConfigError when relayConfigProblems finds anything. */
export function assertRelayConfig(config: RelayConfig, accounts?: readonly RelayAccountInfo[]): void {
  const problems = relayConfigProblems(config, accounts);
  if (problems.length > 0) throw new RelayConfigError(problems);
}
