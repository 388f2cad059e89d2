import pg from 'pg';

const CONNECT_TIMEOUT_MS = 3_000;

/**
 * Names of the credentials in the PostgreSQL database, read with one short
 * connection and nothing written (the config is checked before the daemon
 * opens its store). No table yet: none. A server that cannot be reached (or
 * refuses the login) answers "any": the config is not at fault, and the
 * store's own open says what is wrong.
 */
export async function readPgCredentialNames(url: string): Promise<{ has(name: string): boolean }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'mailgate' });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch {
    return { has: () => true };
  }
  try {
    const { rows } = await client.query<{ name: string }>('SELECT name FROM credentials');
    return new Set(rows.map((r) => r.name));
  } catch {
    return new Set();
  } finally {
    await client.end().catch(() => undefined);
  }
}
