import { describe, expect, it } from 'vitest';
import { accountNamed } from '../../../src/config/lookup.js';
import type { AccountConfig } from '../../../src/config/types.js';

const account = (name: string) => ({ name }) as AccountConfig;

describe('accountNamed', () => {
  it('finds an account by name, and nothing for a name that is not configured', () => {
    const config = { accounts: Array.from({ length: 5_000 }, (_, i) => account(`a${i}`)) };
    expect(accountNamed(config, 'a4999')).toBe(config.accounts[4999]);
    expect(accountNamed(config, 'a0')).toBe(config.accounts[0]);
    expect(accountNamed(config, 'nope')).toBeUndefined();
    // Names are matched exactly, not as prototype keys.
    expect(accountNamed(config, 'constructor')).toBeUndefined();
  });

  it('a reloaded config (a new accounts list) is looked up in its own index', () => {
    const before = { accounts: [account('support')] };
    const after = { accounts: [account('sales')] };
    expect(accountNamed(before, 'support')).toBeDefined();
    expect(accountNamed(after, 'support')).toBeUndefined();
    expect(accountNamed(after, 'sales')).toBe(after.accounts[0]);
  });

  it('a list that grew after it was indexed (while a config is built) is indexed again', () => {
    const config = { accounts: [account('one')] };
    expect(accountNamed(config, 'two')).toBeUndefined();
    config.accounts.push(account('two'));
    expect(accountNamed(config, 'two')).toBe(config.accounts[1]);
  });
});
