import type { AccountConfig } from '../config/types.js';
import type { ConnectorDeps } from './connector-base.js';
import { createImapConnector } from './imap/imap-connector.js';
import { createPop3Connector } from './pop3/pop3-connector.js';
import type { IncomingConnector } from './source.js';

/** The connector for an account's incoming protocol. */
export function createConnector(account: AccountConfig, deps: Omit<ConnectorDeps, 'account'>): IncomingConnector {
  const full = { ...deps, account };
  return account.incoming.protocol === 'pop3' ? createPop3Connector(full) : createImapConnector(full);
}
