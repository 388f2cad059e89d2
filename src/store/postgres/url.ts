/**
 * A PostgreSQL URL as it may be shown (logs, errors, status): the password
 * is replaced, whatever else the URL holds. A text that is not a URL at all
 * is not shown, since it may be nothing but a secret.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(an unreadable URL)';
  }
  if (u.password !== '') u.password = '***';
  for (const key of [...u.searchParams.keys()]) {
    if (/pass|secret|key/i.test(key)) u.searchParams.set(key, '***');
  }
  return u.toString();
}

/** host:port/database, for messages that say which database could not be reached. */
export function whereOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'}`;
  } catch {
    return 'the configured database';
  }
}

/** True for postgres:// and postgresql:// URLs, the two schemes libpq and node-postgres read. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}
