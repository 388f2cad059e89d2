import { rawConfigSchema } from '../config/schema.js';
import type { Config } from '../config/types.js';
import { MailgateError } from '../errors.js';
import type { StoredCredential } from '../store/oauth.js';
import { parseServiceAccountKey, ServiceAccountKeyError } from './service-account-key.js';
import type { Store } from '../store/store.js';

/**
 * Adding and changing a credential kept in the database. A database
 * credential obeys exactly the rules of one written in the YAML (the same
 * schema, the same custom-provider rules), so either kind works wherever a
 * credential is used. Shared by `mailgate credentials add` and the admin UI.
 */

const credentialSchema = rawConfigSchema.shape.credentials.unwrap().element;

export interface CredentialInput {
  name: string;
  provider: string;
  clientId: string;
  /** undefined keeps the stored secret; null stores none. */
  clientSecret?: string | null;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  deviceAuthorizationEndpoint?: string;
  scopes?: string[];
  tenant?: string;
  grant?: string;
  /** grant service_account: the JSON key's content (a secret: stored sealed like a client secret). */
  serviceAccountKeyJson?: string;
  /** `2027-06-30`: when the client secret expires (warnings 30 and 7 days before). */
  clientSecretExpiresAt?: string;
  /** Google: the OAuth app is in "Testing" status. */
  testingApp?: boolean;
}

export type CredentialErrors = Partial<Record<keyof CredentialInput, string>>;

const SETTINGS = ['authorizationEndpoint', 'tokenEndpoint', 'deviceAuthorizationEndpoint', 'scopes', 'tenant', 'grant', 'testingApp'] as const;

/** Every problem with the input, by field; empty when it is valid. */
export function validateCredential(input: CredentialInput, config: Config): CredentialErrors {
  const errors: CredentialErrors = {};
  const { serviceAccountKeyJson, ...schemaInput } = input;
  const parsed = credentialSchema.safeParse({ ...schemaInput, clientSecret: undefined, clientId: input.clientId || undefined });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = issue.path[0] as keyof CredentialInput;
      errors[field] ??= issue.message;
    }
  }
  if (!input.provider) errors.provider = 'choose the service provider (Google, Microsoft 365, … or Custom)';
  if (!input.name) errors.name = 'a name is required';
  if (input.grant === 'service_account') {
    if (input.provider !== 'google' && input.provider !== 'custom') errors.grant ??= 'grant service_account is Google domain-wide delegation';
    if (!serviceAccountKeyJson) {
      errors.serviceAccountKeyJson ??= 'a service account needs its JSON key (--service-account-key-file)';
    } else {
      try {
        const key = parseServiceAccountKey(serviceAccountKeyJson, 'the service-account key');
        if (input.clientId && input.clientId !== key.clientId) errors.clientId ??= `the key's client_id is ${key.clientId}; leave the client ID out`;
      } catch (err) {
        errors.serviceAccountKeyJson ??= err instanceof ServiceAccountKeyError ? err.message : 'the service-account key does not parse';
      }
    }
  } else {
    if (!input.clientId) errors.clientId = 'a client ID is required';
    if (serviceAccountKeyJson) errors.serviceAccountKeyJson ??= 'a service-account key applies only with grant service_account';
  }
  if (config.credentials.some((c) => c.name === input.name)) {
    errors.name = `credential ${input.name} is defined in the config file; edit it there`;
  }
  // The same rules the config check applies to YAML credentials.
  if (input.provider === 'custom') {
    if (!input.tokenEndpoint) errors.tokenEndpoint ??= 'a custom provider needs a token endpoint';
    if (!input.authorizationEndpoint && (input.grant ?? 'authorization_code') === 'authorization_code') {
      errors.authorizationEndpoint ??= 'a custom provider needs an authorization endpoint';
    }
    if (!input.scopes?.length) errors.scopes ??= 'a custom provider needs scopes';
  }
  if (input.tenant !== undefined && !input.provider.startsWith('microsoft')) errors.tenant ??= 'tenant only applies to microsoft providers';
  return errors;
}

/**
 * Validates, then inserts or replaces the credential (the secret is
 * encrypted by the store). Throws BAD_REQUEST with `details.fields` and
 * changes nothing when the input is invalid.
 */
export async function saveCredential(
  store: Store,
  config: Config,
  input: CredentialInput,
  opts: { createOnly?: boolean } = {},
): Promise<StoredCredential> {
  const existing = await store.credentials.get(input.name);
  // Editing a service account without a new key keeps the stored one (it is write-only, like a secret).
  if (input.grant === 'service_account' && input.serviceAccountKeyJson === undefined && existing?.settings.grant === 'service_account' && existing.clientSecret) {
    input = { ...input, serviceAccountKeyJson: existing.clientSecret, clientId: '' };
  }
  if (input.grant === 'service_account') input = { ...input, clientSecret: undefined };
  const errors = validateCredential(input, config);
  if (opts.createOnly && existing) errors.name ??= `a credential named ${input.name} already exists; edit it instead`;
  const problems = Object.values(errors);
  if (problems.length > 0) {
    throw new MailgateError('BAD_REQUEST', `credential ${input.name || '(no name)'}: ${problems.join('; ')}`, { details: { fields: errors } });
  }
  const settings: Record<string, unknown> = {};
  for (const k of SETTINGS) if (input[k] !== undefined) settings[k] = input[k];
  if (input.clientSecretExpiresAt !== undefined) settings.clientSecretExpiresAt = Date.parse(`${input.clientSecretExpiresAt.slice(0, 10)}T00:00:00Z`);
  // A service account's key is its secret: it goes where the client secret goes, sealed by the store.
  const key = input.grant === 'service_account' && input.serviceAccountKeyJson ? parseServiceAccountKey(input.serviceAccountKeyJson) : null;
  return store.credentials.upsert({
    name: input.name,
    provider: input.provider,
    clientId: key?.clientId ?? input.clientId,
    clientSecret: key ? input.serviceAccountKeyJson! : input.clientSecret === undefined ? (existing?.clientSecret ?? null) : input.clientSecret,
    settings,
  }, Date.now());
}
