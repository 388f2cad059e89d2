/**
 * What connectors (IMAP, POP3, SMTP) see of the token service: the one source
 * of access tokens. Only the token service talks to token endpoints.
 *
 * Errors: MailgateError with code
 *  - OAUTH_REAUTH_REQUIRED (permanent): the refresh token was rejected; the
 *    account is marked and an event was emitted; do not retry until re-authorized.
 *  - OAUTH_MISSING_TOKEN (permanent): never authorized.
 *  - OAUTH_TRANSIENT (not permanent): token endpoint down; back off and retry.
 */
export interface AccessToken {
  token: string;
  /** Epoch ms; null when the provider gave no lifetime. */
  expiresAt: number | null;
}

export interface TokenProvider {
  /**
   * A valid access token for the account. `rejectedToken`: the server just
   * refused this token (e.g. XOAUTH2 failed), so do not hand it out again;
   * refresh unless a newer one is already cached.
   */
  getAccessToken(account: string, opts?: { rejectedToken?: string }): Promise<AccessToken>;
  /**
   * How a login with the account's token went: a success clears the
   * account's error counters and, after failures or a re-authorization,
   * announces `account.recovered`. Optional: test doubles may leave it out.
   */
  reportLogin?(account: string, outcome: { ok: true } | { ok: false; error: string }): Promise<void>;
}

/**
 * Runs `use` with the account's access token. When the server refuses that
 * token (`isRefusal`: a revoked or expired token the cache did not know
 * about), asks the token service once for a fresh one and runs again; a
 * second refusal, or any other error, is the caller's.
 */
export async function withAccessToken<T>(
  tokens: TokenProvider,
  account: string,
  use: (accessToken: string) => Promise<T>,
  isRefusal: (err: unknown) => boolean,
  onRefused?: () => void,
): Promise<T> {
  const token = await tokens.getAccessToken(account);
  try {
    return await use(token.token);
  } catch (err) {
    if (!isRefusal(err)) throw err;
    onRefused?.();
    const fresh = await tokens.getAccessToken(account, { rejectedToken: token.token });
    return use(fresh.token);
  }
}
