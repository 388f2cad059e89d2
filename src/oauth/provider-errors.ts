/**
 * What a token endpoint's refusal means, told apart by its words: the one
 * table that decides whether mailgate asks for a new authorization, waits
 * for an admin, retries, or says the configuration is wrong — and the plain
 * words the admin UI, the CLI and `account.reauth_required` show.
 *
 * RFC 6749 §5.2 gives one `error` for many causes (`invalid_grant` is a
 * revoked token, an expired one, a clock off by an hour, a deleted user…),
 * so the providers' own codes decide: Microsoft's AADSTS numbers (in
 * `error_codes` and at the start of `error_description`) and Google's
 * `error_description` sentences. Microsoft says not to build on the
 * description's text, which is why its numbers are matched, never its
 * sentences; Google publishes no codes, so its sentences are all there is.
 * Each entry cites where the provider documents it.
 */

export type TokenAction =
  /** The grant is dead: mark the account reauth_required and show the authorize link. */
  | 'reauth'
  /** Someone outside mailgate must change something (a tenant policy, delegation); keep trying, slowly. */
  | 'retry_slowly'
  /** Transient: back off and retry (honouring Retry-After). */
  | 'retry'
  /** mailgate's credential settings are wrong: stop until the config or credential changes. */
  | 'fix_config';

/** The grant of the token request that failed (not the credential's configured grant). */
export type TokenGrant = 'authorization_code' | 'refresh_token' | 'client_credentials' | 'device_code' | 'jwt_bearer';

export interface TokenErrorInput {
  status: number | null;
  error: string | null;
  error_description: string | null;
  /** The credential's provider: google | microsoft | microsoft-gcc-high | custom. */
  provider: string;
  grant: TokenGrant;
  /** Microsoft's `error_codes` array, when the response had one. */
  error_codes?: readonly number[] | null;
  /** For the words: the OAuth client id (the numeric one for a Google service account). */
  clientId?: string;
  scopes?: readonly string[];
  /** For the words: the mailbox login (`sub` of a JWT grant). */
  subject?: string;
  /** Evidence for Google's 7-day Testing cliff: when the refresh token was issued (ms). */
  refreshTokenIssuedAt?: number | null;
  /** The admin marked the credential's Google app as in "Testing" status. */
  testingApp?: boolean;
  now?: number;
}

export interface TokenErrorClass {
  action: TokenAction;
  /** retry and retry_slowly: the same request may succeed later without anyone touching mailgate. */
  transient: boolean;
  /** The table entry: 'AADSTS50173', 'google.refresh.testing_app', 'oauth.invalid_grant', … */
  id: string;
  /** What the UI shows. */
  words: string;
  /** The provider's own error and first description line, for logs and `lastError`. */
  detail: string;
  /** Where the provider documents it. */
  source: string;
  /** For retry_slowly: wait at least this long before the next attempt. */
  retryAfterMs: number | null;
}

/** retry_slowly's pace: delegation and tenant policy changes take minutes to hours to reach the token endpoint. */
export const RETRY_SLOWLY_MS = 15 * 60_000;
/** Google: apps in "Testing" status get refresh tokens that expire after 7 days. */
const GOOGLE_TESTING_CLIFF_DAYS = 7;

const MS_CODES = 'https://learn.microsoft.com/entra/identity-platform/reference-error-codes';
const MS_APP_ONLY = 'https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth';
const GOOGLE_EXPIRATION = 'https://developers.google.com/identity/protocols/oauth2#expiration';
const GOOGLE_ADS_ERRORS = 'https://developers.google.com/google-ads/api/docs/get-started/common-errors';
const GOOGLE_JWT = 'https://developers.google.com/identity/protocols/oauth2/service-account#error-codes';
const GOOGLE_DEVICE = 'https://developers.google.com/identity/protocols/oauth2/limited-input-device#allowedscopes';
const RFC6749 = 'https://www.rfc-editor.org/rfc/rfc6749#section-5.2';
const RFC8628 = 'https://www.rfc-editor.org/rfc/rfc8628#section-3.5';

export interface ErrorTableEntry {
  id: string;
  provider: 'microsoft' | 'google' | 'any';
  /** Microsoft: the AADSTS number. */
  aadsts?: number;
  /** The RFC 6749 `error` values this entry applies to (any when absent). */
  error?: readonly string[];
  /** Google: the `error_description` sentence (matched case-insensitively from its start). */
  description?: RegExp;
  /** Grants this entry applies to (any when absent). */
  grants?: readonly TokenGrant[];
  action: TokenAction;
  /** Plain words; {clientId}, {scopes}, {subject} are filled from the input. */
  words: string;
  source: string;
}

const DELEGATED: readonly TokenGrant[] = ['authorization_code', 'refresh_token', 'device_code'];

/** Microsoft Entra: matched by AADSTS number. Descriptions paraphrase MS_CODES unless another source is given. */
const MICROSOFT: ErrorTableEntry[] = [
  // Dead grants: the user (or an admin on their behalf) must sign in again.
  { id: 'AADSTS50173', aadsts: 50173, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: "Microsoft revoked this account's tokens (an admin or the user revoked sessions, or the password was reset). Authorize the account again." },
  { id: 'AADSTS700082', aadsts: 700082, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'The refresh token expired because it went unused too long (Microsoft: 90 days of inactivity). Authorize the account again.' },
  { id: 'AADSTS70008', aadsts: 70008, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'The refresh token has expired or was revoked. Authorize the account again.' },
  { id: 'AADSTS70043', aadsts: 70043, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: "A Conditional Access sign-in frequency policy ended this session. Authorize the account again; to stop it recurring, an Entra admin can exempt mailgate's app from the sign-in frequency policy." },
  { id: 'AADSTS50076', aadsts: 50076, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'Multifactor authentication is now required for this mailbox (a new Conditional Access or per-user MFA rule). Authorize the account again and complete MFA in the browser.' },
  { id: 'AADSTS50079', aadsts: 50079, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'The user must register for multifactor authentication. Have them register their security info, then authorize the account again.' },
  { id: 'AADSTS50078', aadsts: 50078, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'The multifactor authentication on this session expired under your policies. Authorize the account again.' },
  { id: 'AADSTS50089', aadsts: 50089, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'The sign-in expired before it completed. Authorize the account again.' },
  { id: 'AADSTS70000', aadsts: 70000, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'Microsoft refused the refresh token as invalid. Authorize the account again.' },
  { id: 'AADSTS54005', aadsts: 54005, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'This authorization code was already used. Start the authorization again.' },
  { id: 'AADSTS50057', aadsts: 50057, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: 'The user account is disabled in Entra ID. Once an admin enables it, authorize the account again.' },
  { id: 'AADSTS90094', aadsts: 90094, provider: 'microsoft', action: 'reauth', source: MS_CODES,
    words: "Your tenant requires an administrator to consent to mailgate's app. An admin must authorize it (or grant consent in Enterprise applications), then authorize the account again." },
  // 65001 is a missing consent: for a user a new authorization asks for it,
  // for an app-only credential only an admin's consent helps.
  { id: 'AADSTS65001', aadsts: 65001, provider: 'microsoft', grants: DELEGATED, action: 'reauth', source: MS_CODES,
    words: "Nobody consented to mailgate's app for this mailbox. Authorize the account again and accept the permissions, or have an admin grant consent for the tenant." },
  { id: 'AADSTS65001.app_only', aadsts: 65001, provider: 'microsoft', grants: ['client_credentials'], action: 'fix_config', source: MS_APP_ONLY,
    words: "The app's application permissions (IMAP.AccessAsApp, POP.AccessAsApp, SMTP.SendAsApp on Office 365 Exchange Online) have no admin consent. In Entra › App registrations › API permissions, choose \"Grant admin consent\"." },
  // Tenant policy: nothing mailgate can do but wait for an admin.
  { id: 'AADSTS53003', aadsts: 53003, provider: 'microsoft', action: 'retry_slowly', source: MS_CODES,
    words: "A Conditional Access policy blocks mailgate's sign-in (often a location or device rule). An Entra admin must exclude the app or allow where mailgate runs; mailgate keeps trying every 15 minutes." },
  { id: 'AADSTS50196', aadsts: 50196, provider: 'microsoft', action: 'retry_slowly', source: MS_CODES,
    words: 'Microsoft detected too many identical token requests and paused them. mailgate slows down and tries again.' },
  { id: 'AADSTS90055', aadsts: 90055, provider: 'microsoft', action: 'retry_slowly', source: MS_CODES,
    words: 'Microsoft is throttling token requests for this tenant. mailgate slows down and tries again.' },
  // Transient on Microsoft's side.
  ...[50033, 50087, 90006, 90024, 90033, 90090].map(
    (n): ErrorTableEntry => ({ id: `AADSTS${n}`, aadsts: n, provider: 'microsoft', action: 'retry', source: MS_CODES,
      words: 'Microsoft\'s sign-in service had a temporary error. mailgate retries.' }),
  ),
  // The credential's settings in mailgate (or the app registration) are wrong.
  { id: 'AADSTS7000222', aadsts: 7000222, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'The client secret has expired. Create a new one under Entra › App registrations › Certificates & secrets (or use a certificate), then update clientSecret and clientSecretExpiresAt.' },
  { id: 'AADSTS7000215', aadsts: 7000215, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: "The client secret is wrong. Use the secret's Value (shown once when it is created), not its Secret ID." },
  { id: 'AADSTS7000218', aadsts: 7000218, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: "Microsoft expects a client secret or certificate for this app. Set clientSecret (or a client certificate), or turn on \"Allow public client flows\" in the app's Authentication settings." },
  { id: 'AADSTS700025', aadsts: 700025, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'The app is registered as a public client, so it must not send a secret or certificate. Remove clientSecret, or turn off "Allow public client flows".' },
  { id: 'AADSTS700016', aadsts: 700016, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'No app with this clientId exists in the tenant. Check clientId (Application (client) ID) and tenant, and that the app was added to the tenant.' },
  { id: 'AADSTS50194', aadsts: 50194, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'The app is single-tenant, so the "common" endpoint is refused. Set tenant to your tenant ID or domain.' },
  { id: 'AADSTS9001023', aadsts: 9001023, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'App-only tokens cannot come from the "common" endpoint. Set tenant to your tenant ID or domain.' },
  { id: 'AADSTS90002', aadsts: 90002, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'The tenant was not found. Check tenant, and the provider: microsoft-gcc-high tenants live on login.microsoftonline.us.' },
  { id: 'AADSTS500011', aadsts: 500011, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'The resource in the scopes does not exist in this tenant (Exchange Online not found). Check the scopes and the provider (commercial or GCC High).' },
  { id: 'AADSTS650057', aadsts: 650057, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: "The app asks for a permission its registration does not list. Add the permissions under Entra › App registrations › API permissions, or fix the credential's scopes." },
  { id: 'AADSTS70011', aadsts: 70011, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: "Microsoft refused the scopes. App-only credentials use https://outlook.office365.com/.default; check the credential's scopes." },
  { id: 'AADSTS700027', aadsts: 700027, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: "Microsoft could not verify the client certificate's signature. Upload this certificate to the app under Certificates & secrets, or configure the certificate that is registered there." },
  { id: 'AADSTS50012', aadsts: 50012, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'Microsoft refused the client credential (a certificate that is not registered, expired or untrusted, or a bad assertion). Check the certificate registered on the app.' },
  { id: 'AADSTS70001', aadsts: 70001, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'The application is disabled in the tenant. An admin must enable it (Enterprise applications › Properties).' },
  { id: 'AADSTS7000112', aadsts: 7000112, provider: 'microsoft', action: 'fix_config', source: MS_CODES,
    words: 'The application is disabled in the tenant. An admin must enable it (Enterprise applications › Properties).' },
];

/** Google: matched by `error` and the start of `error_description`. */
const GOOGLE: ErrorTableEntry[] = [
  // Domain-wide delegation (JWT-bearer grant): Google's own table of JWT errors.
  { id: 'google.jwt.delegation_scope', provider: 'google', grants: ['jwt_bearer'], error: ['unauthorized_client'],
    description: /^client is unauthorized to retrieve access tokens using this method/i, action: 'retry_slowly', source: GOOGLE_JWT,
    words: "Domain-wide delegation for client {clientId} is missing the scope {scopes} (or it was added with the service account's email instead of its numeric client ID). In the Google Admin console › Security › Access and data control › API controls › Manage Domain Wide Delegation, add client ID {clientId} with {scopes}. It can take up to 24 hours to apply; mailgate keeps trying every 15 minutes." },
  { id: 'google.jwt.delegation_missing', provider: 'google', grants: ['jwt_bearer'], error: ['unauthorized_client'],
    description: /^unauthorized client or scope in request/i, action: 'retry_slowly', source: GOOGLE_JWT,
    words: "The service account (client {clientId}) is not authorized for domain-wide delegation in {subject}'s Google Workspace. In the Admin console › Security › API controls › Manage Domain Wide Delegation, add client ID {clientId} with {scopes}. It can take up to 24 hours to apply; mailgate keeps trying every 15 minutes." },
  { id: 'google.jwt.scope_denied', provider: 'google', grants: ['jwt_bearer'], error: ['access_denied'], action: 'retry_slowly', source: GOOGLE_JWT,
    words: 'Domain-wide delegation for client {clientId} does not include every scope mailgate asks for ({scopes}), or Google services are restricted for this user. Add the scopes in the Admin console › Manage Domain Wide Delegation; mailgate keeps trying every 15 minutes.' },
  { id: 'google.jwt.admin_policy', provider: 'google', grants: ['jwt_bearer'], error: ['admin_policy_enforced'], action: 'retry_slowly', source: GOOGLE_JWT,
    words: "A Google Workspace admin policy blocks the scopes {scopes} for this user. An admin must allow client {clientId} (Admin console › Security › API controls › App access control); mailgate keeps trying every 15 minutes." },
  { id: 'google.jwt.unknown_user', provider: 'google', grants: ['jwt_bearer'], error: ['invalid_grant'],
    description: /^(not a valid email|invalid email or user id)/i, action: 'fix_config', source: GOOGLE_JWT,
    words: "{subject} is not a user of the Google Workspace domain. Check the account's user (or email): it must be the mailbox's primary address." },
  { id: 'google.jwt.clock', provider: 'google', grants: ['jwt_bearer'], error: ['invalid_grant'],
    description: /^invalid jwt: token must be a short-lived token/i, action: 'retry_slowly', source: GOOGLE_JWT,
    words: "Google says the assertion's time is off: this machine's clock is wrong. Synchronize it (NTP); mailgate keeps trying." },
  { id: 'google.jwt.signature', provider: 'google', grants: ['jwt_bearer'], error: ['invalid_grant'],
    description: /^invalid jwt signature/i, action: 'fix_config', source: GOOGLE_JWT,
    words: 'Google does not accept the signature: the key was deleted or disabled, or does not belong to this service account. Create a new JSON key and update serviceAccountKeyFile.' },
  { id: 'google.jwt.disabled_client', provider: 'google', grants: ['jwt_bearer'], error: ['disabled_client'], action: 'fix_config', source: GOOGLE_JWT,
    words: 'The service account or its key is disabled. Enable it in Google Cloud › IAM › Service accounts.' },
  { id: 'google.jwt.deleted_client', provider: 'google', error: ['deleted_client'], action: 'fix_config', source: GOOGLE_JWT,
    words: 'The OAuth client was deleted (Google deletes unused clients; they can be restored within 30 days). Restore it or configure a client that exists.' },
  { id: 'google.jwt.org_internal', provider: 'google', error: ['org_internal'], action: 'fix_config', source: GOOGLE_JWT,
    words: "The client is restricted to users of its own Google Cloud organization. Use a client from the mailbox's organization." },
  // Refresh tokens: Google uses one sentence for revoked and expired.
  { id: 'google.refresh.testing_app', provider: 'google', grants: ['refresh_token'], error: ['invalid_grant'],
    description: /^token has been expired or revoked/i, action: 'reauth', source: GOOGLE_ADS_ERRORS,
    words: 'Google expired the refresh token 7 days after consent, as it does for apps in "Testing" status. Publish the app (Google Cloud › OAuth consent screen › Publish app), then authorize the account again.' },
  { id: 'google.refresh.expired_or_revoked', provider: 'google', grants: ['refresh_token'], error: ['invalid_grant'],
    description: /^token has been (expired or )?revoked/i, action: 'reauth', source: GOOGLE_EXPIRATION,
    words: "Google no longer accepts the refresh token: access was removed (by the user or an admin), the password changed, it went unused for 6 months, or the app's token limit was reached. Authorize the account again." },
  { id: 'google.refresh.bad_request', provider: 'google', grants: ['refresh_token'], error: ['invalid_grant'], description: /^bad request/i, action: 'reauth', source: GOOGLE_EXPIRATION,
    words: 'Google does not recognise the refresh token. Authorize the account again.' },
  { id: 'google.device.scope', provider: 'google', grants: ['device_code'], error: ['invalid_scope'], action: 'fix_config', source: GOOGLE_DEVICE,
    words: "Google's device flow does not allow the Gmail scope https://mail.google.com/. Authorize in a browser instead (mailgate authorize ACCOUNT, without --device)." },
];

/** RFC 6749 §5.2 / RFC 8628 §3.5, when no provider entry matched. */
const GENERIC: ErrorTableEntry[] = [
  { id: 'oauth.invalid_grant.jwt', provider: 'any', grants: ['jwt_bearer'], error: ['invalid_grant'], action: 'fix_config', source: RFC6749,
    words: 'The token endpoint refused the signed assertion. Check the service-account key, the mailbox login and the clock.' },
  { id: 'oauth.invalid_grant.app_only', provider: 'any', grants: ['client_credentials'], error: ['invalid_grant'], action: 'fix_config', source: RFC6749,
    words: 'The token endpoint refused the app-only request. Check the credential.' },
  { id: 'oauth.invalid_grant', provider: 'any', error: ['invalid_grant', 'expired_token', 'access_denied', 'interaction_required', 'login_required', 'consent_required'],
    grants: DELEGATED, action: 'reauth', source: RFC6749,
    words: 'The provider no longer accepts this authorization (expired, revoked or denied). Authorize the account again.' },
  { id: 'oauth.unauthorized_client.jwt', provider: 'any', grants: ['jwt_bearer'], error: ['unauthorized_client', 'access_denied'], action: 'retry_slowly', source: RFC6749,
    words: 'The token endpoint does not let client {clientId} act for {subject} with {scopes}. Grant the delegation; mailgate keeps trying every 15 minutes.' },
  { id: 'oauth.invalid_client', provider: 'any', error: ['invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'invalid_request', 'invalid_target', 'access_denied'],
    action: 'fix_config', source: RFC6749, words: 'The provider refused the credential settings. Check clientId, the secret or certificate, tenant and scopes.' },
  { id: 'oauth.pending', provider: 'any', error: ['authorization_pending', 'slow_down'], action: 'retry', source: RFC8628,
    words: 'Waiting for the user to approve the device code.' },
  { id: 'oauth.temporarily_unavailable', provider: 'any', error: ['temporarily_unavailable', 'server_error'], action: 'retry', source: RFC6749,
    words: 'The token endpoint failed temporarily. mailgate retries.' },
];

/** The whole table, in matching order within each group. Exported for the docs and their test. */
export const PROVIDER_ERROR_TABLE: readonly ErrorTableEntry[] = Object.freeze([...MICROSOFT, ...GOOGLE, ...GENERIC]);

const byAadsts = new Map<number, ErrorTableEntry[]>();
for (const e of MICROSOFT) if (e.aadsts !== undefined) byAadsts.set(e.aadsts, [...(byAadsts.get(e.aadsts) ?? []), e]);

function family(provider: string): 'microsoft' | 'google' | 'other' {
  if (provider.startsWith('microsoft')) return 'microsoft';
  return provider === 'google' ? 'google' : 'other';
}

/** AADSTS numbers of a response: `error_codes`, else the description's AADSTSnnnn prefixes. */
export function aadstsCodes(input: Pick<TokenErrorInput, 'error_codes' | 'error_description'>): number[] {
  if (input.error_codes && input.error_codes.length > 0) return [...input.error_codes];
  return [...(input.error_description ?? '').matchAll(/AADSTS(\d{4,8})\b/g)].map((m) => Number(m[1]));
}

function applies(e: ErrorTableEntry, input: TokenErrorInput): boolean {
  if (e.grants && !e.grants.includes(input.grant)) return false;
  if (e.error && !(input.error && e.error.includes(input.error))) return false;
  if (e.description && !e.description.test(firstLine(input.error_description).trim())) return false;
  return true;
}

function firstLine(s: string | null | undefined): string {
  return (s ?? '').split(/\r?\n/)[0] ?? '';
}

/** Google rejected at about 7 days, or the admin said the app is in Testing: the cliff is the likely cause. */
function testingEvidence(input: TokenErrorInput): boolean {
  if (input.testingApp) return true;
  if (input.refreshTokenIssuedAt == null) return false;
  const days = ((input.now ?? Date.now()) - input.refreshTokenIssuedAt) / 86_400_000;
  return days >= GOOGLE_TESTING_CLIFF_DAYS - 0.5 && days < GOOGLE_TESTING_CLIFF_DAYS + 1;
}

function render(words: string, input: TokenErrorInput): string {
  const scopes = input.scopes && input.scopes.length > 0 ? input.scopes.join(' ') : 'the requested scopes';
  return words
    .replaceAll('{clientId}', input.clientId || 'this client')
    .replaceAll('{scopes}', scopes)
    .replaceAll('{subject}', input.subject || 'this mailbox');
}

function result(e: ErrorTableEntry, input: TokenErrorInput, detail: string): TokenErrorClass {
  return {
    action: e.action,
    transient: e.action === 'retry' || e.action === 'retry_slowly',
    id: e.id,
    words: render(e.words, input),
    detail,
    source: e.source,
    retryAfterMs: e.action === 'retry_slowly' ? RETRY_SLOWLY_MS : null,
  };
}

/**
 * Classifies one failed token request. Network failures (`status` null, no
 * `error`) and HTTP 5xx/429 are `retry`; everything else goes through the
 * table; a 4xx nobody documented is `retry_slowly` — neither hammered nor
 * taken for a dead grant.
 */
export function classifyTokenError(input: TokenErrorInput): TokenErrorClass {
  const desc = firstLine(input.error_description);
  const detail = input.error ? `${input.error}${desc ? `: ${desc}` : ''}` : input.status ? `HTTP ${input.status}${desc ? `: ${desc}` : ''}` : desc || 'no answer';
  const fam = family(input.provider);

  // AADSTS numbers are Entra's; a custom provider pointing at Entra has them too.
  if (fam === 'microsoft' || /AADSTS\d/.test(input.error_description ?? '') || (input.error_codes?.length ?? 0) > 0) {
    for (const code of aadstsCodes(input)) {
      const hit = byAadsts.get(code)?.find((e) => !e.grants || e.grants.includes(input.grant));
      if (hit) return result(hit, input, detail);
    }
  }
  if (fam === 'google') {
    for (const e of GOOGLE) {
      if (!applies(e, input)) continue;
      if (e.id === 'google.refresh.testing_app' && !testingEvidence(input)) continue;
      return result(e, input, detail);
    }
  }
  if (input.status === null && !input.error) return transient('network', input, detail);
  if (input.error) {
    const hit = GENERIC.find((e) => applies(e, input));
    if (hit) return result(hit, input, detail);
  }
  if (input.status !== null && (input.status >= 500 || input.status === 429 || input.status === 408)) return transient(`http.${input.status}`, input, detail);
  if (input.status === 401) return result(GENERIC.find((e) => e.id === 'oauth.invalid_client')!, input, detail);
  return {
    action: 'retry_slowly',
    transient: true,
    id: 'unknown',
    words: `The token endpoint refused the request in a way mailgate does not know (${detail}). mailgate keeps trying every 15 minutes; check the credential.`,
    detail,
    source: RFC6749,
    retryAfterMs: RETRY_SLOWLY_MS,
  };
}

function transient(id: string, _input: TokenErrorInput, detail: string): TokenErrorClass {
  return { action: 'retry', transient: true, id, words: 'The token endpoint could not be reached or failed temporarily. mailgate retries.', detail, source: RFC6749, retryAfterMs: null };
}
