import type { CredentialConfig, Grant, Provider } from '../config/types.js';
import { MailgateError } from '../errors.js';
import type { CertificateCredential } from './client-assertion.js';
import type { ServiceAccountKey } from './service-account-key.js';

/** A credential with endpoints and scopes resolved from its provider preset. */
export interface ResolvedCredential {
  name: string;
  provider: Provider;
  clientId: string;
  clientSecret: string | undefined;
  grant: Grant;
  authorizationEndpoint: string | undefined;
  tokenEndpoint: string;
  deviceAuthorizationEndpoint: string | undefined;
  scopes: string[];
  /** Extra authorization request parameters the provider needs to return a refresh token. */
  authorizationParams: Record<string, string>;
  source: 'config' | 'database';
  /** grant service_account: the key that signs each JWT-bearer assertion. */
  serviceAccountKey?: ServiceAccountKey | undefined;
  /** Entra certificate credentials: client assertions instead of the secret. */
  clientCertificate?: CertificateCredential | undefined;
  clientAssertionAlg?: 'PS256' | 'RS256' | undefined;
  /** Epoch ms: when the client secret (or certificate) expires. */
  clientSecretExpiresAt?: number | undefined;
  /** Google: the admin marked the app as in "Testing" status. */
  testingApp: boolean;
  tenant: string;
}

const GOOGLE = {
  authorizationEndpoint: 'https://accounts.google.com/o/oauth2/auth',
  tokenEndpoint: 'https://oauth2.googleapis.com/token',
  deviceAuthorizationEndpoint: 'https://oauth2.googleapis.com/device/code',
  scopes: ['https://mail.google.com/'],
  // Without offline access + forced consent Google returns no refresh token
  // on a second authorization of the same client.
  authorizationParams: { access_type: 'offline', prompt: 'consent' },
};

/**
 * Microsoft's presets. Commercial: the token host and the scopes are those of
 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 * (delegated `https://outlook.office.com/IMAP.AccessAsUser.All`,
 * `POP.AccessAsUser.All`, `SMTP.Send`; app-only
 * `https://outlook.office365.com/.default`).
 *
 * GCC High: tokens come from the US Government cloud's own Entra host,
 * `https://login.microsoftonline.us`, per
 * https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud
 * ("Microsoft Entra authentication endpoints": Microsoft Entra ID for US
 * Government, https://login.microsoftonline.us). Exchange Online in GCC High
 * is `outlook.office365.us`, which Microsoft lists as the Exchange Online
 * host for HTTPS and for IMAP, POP and SMTP (TCP 143, 25, 587, 993, 995) in
 * https://learn.microsoft.com/microsoft-365/enterprise/microsoft-365-u-s-government-gcc-high-endpoints
 * (Exchange Online, IDs 1 and 5; `login.microsoftonline.us` is ID 13); that
 * list has no `outlook.office.us` host, which the earlier preset derived
 * for the delegated scopes. The OAuth page above names only the commercial
 * scope strings, so GCC High uses its one Exchange resource host for both:
 * `https://outlook.office365.us/IMAP.AccessAsUser.All`, … and
 * `https://outlook.office365.us/.default`. Checked 2026-12-01.
 * `scopes` in the credential overrides this for a tenant that differs.
 */
function microsoft(host: string, delegatedResource: string, appResource: string, tenant: string, grant: Grant) {
  const base = `https://${host}/${encodeURIComponent(tenant)}/oauth2/v2.0`;
  return {
    authorizationEndpoint: `${base}/authorize`,
    tokenEndpoint: `${base}/token`,
    deviceAuthorizationEndpoint: `${base}/devicecode`,
    scopes:
      grant === 'client_credentials'
        ? [`https://${appResource}/.default`]
        : [
            `https://${delegatedResource}/IMAP.AccessAsUser.All`,
            `https://${delegatedResource}/POP.AccessAsUser.All`,
            `https://${delegatedResource}/SMTP.Send`,
            'offline_access', // without it Microsoft returns no refresh token
          ],
    authorizationParams: {} as Record<string, string>,
  };
}

/** Microsoft's Entra token hosts and Exchange resources, by provider (see microsoft()). */
export const MICROSOFT_CLOUDS = {
  microsoft: { loginHost: 'login.microsoftonline.com', delegatedResource: 'outlook.office.com', appResource: 'outlook.office365.com' },
  'microsoft-gcc-high': { loginHost: 'login.microsoftonline.us', delegatedResource: 'outlook.office365.us', appResource: 'outlook.office365.us' },
} as const;

export function resolveCredential(c: CredentialConfig, source: 'config' | 'database' = 'config'): ResolvedCredential {
  let preset: {
    authorizationEndpoint?: string;
    tokenEndpoint?: string;
    deviceAuthorizationEndpoint?: string;
    scopes?: string[];
    authorizationParams: Record<string, string>;
  };
  switch (c.provider) {
    case 'google':
      preset = GOOGLE;
      break;
    case 'microsoft':
    case 'microsoft-gcc-high': {
      const cloud = MICROSOFT_CLOUDS[c.provider];
      preset = microsoft(cloud.loginHost, cloud.delegatedResource, cloud.appResource, c.tenant, c.grant);
      break;
    }
    default:
      preset = { authorizationParams: {} };
  }
  // A service account's key names its token endpoint (token_uri, also the assertion's aud).
  const tokenEndpoint = c.tokenEndpoint ?? c.serviceAccountKey?.tokenUri ?? preset.tokenEndpoint;
  if (!tokenEndpoint) throw new MailgateError('CONFIG_INVALID', `credential ${c.name} has no tokenEndpoint`);
  return {
    name: c.name,
    provider: c.provider,
    clientId: c.clientId,
    clientSecret: c.clientSecret,
    grant: c.grant,
    authorizationEndpoint: c.authorizationEndpoint ?? preset.authorizationEndpoint,
    tokenEndpoint,
    deviceAuthorizationEndpoint: c.deviceAuthorizationEndpoint ?? preset.deviceAuthorizationEndpoint,
    scopes: c.scopes ?? preset.scopes ?? [],
    authorizationParams: preset.authorizationParams,
    source,
    serviceAccountKey: c.serviceAccountKey,
    clientCertificate: c.clientCertificate,
    clientAssertionAlg: c.clientAssertionAlg,
    clientSecretExpiresAt: c.clientSecretExpiresAt,
    testingApp: c.testingApp ?? false,
    tenant: c.tenant,
  };
}
