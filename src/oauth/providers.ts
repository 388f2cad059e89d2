import type { CredentialConfig, Grant, Provider } from '../config/types.js';
import { MailgateError } from '../errors.js';

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

function microsoft(host: string, resource: string, tenant: string, grant: Grant) {
  const base = `https://${host}/${encodeURIComponent(tenant)}/oauth2/v2.0`;
  return {
    authorizationEndpoint: `${base}/authorize`,
    tokenEndpoint: `${base}/token`,
    deviceAuthorizationEndpoint: `${base}/devicecode`,
    scopes:
      grant === 'client_credentials'
        ? [`https://${resource}/.default`]
        : [
            `https://${resource.replace('office365', 'office')}/IMAP.AccessAsUser.All`,
            `https://${resource.replace('office365', 'office')}/POP.AccessAsUser.All`,
            `https://${resource.replace('office365', 'office')}/SMTP.Send`,
            'offline_access', // without it Microsoft returns no refresh token
          ],
    authorizationParams: {} as Record<string, string>,
  };
}

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
      preset = microsoft('login.microsoftonline.com', 'outlook.office365.com', c.tenant, c.grant);
      break;
    case 'microsoft-gcc-high':
      preset = microsoft('login.microsoftonline.us', 'outlook.office365.us', c.tenant, c.grant);
      break;
    default:
      preset = { authorizationParams: {} };
  }
  const tokenEndpoint = c.tokenEndpoint ?? preset.tokenEndpoint;
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
  };
}
