import type { AccountConfig } from './types.js';

/**
 * An account by name in O(1). A loaded config is never changed in place (a
 * reload builds a new one), so the index is made once per accounts list and
 * forgotten with it. With thousands of accounts, a linear search per account
 * (at start, per status read) made those O(N²).
 */
const indexes = new WeakMap<readonly AccountConfig[], Map<string, AccountConfig>>();

export function accountNamed(config: { readonly accounts: readonly AccountConfig[] }, name: string): AccountConfig | undefined {
  let index = indexes.get(config.accounts);
  // A list grown or shrunk after it was indexed (only while a config is built) is indexed again.
  if (!index || index.size !== config.accounts.length) {
    index = new Map(config.accounts.map((a) => [a.name, a]));
    indexes.set(config.accounts, index);
  }
  return index.get(name);
}
