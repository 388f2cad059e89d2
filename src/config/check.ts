import { formatIssue, loadConfig, type LoadOptions } from './load.js';

/** `mailgate config check`: ok, or every problem as `file:line:col message`. */
export async function checkConfigFile(
  path: string,
  env: Record<string, string | undefined> = process.env,
  databaseCredentials?: LoadOptions['databaseCredentials'],
): Promise<{ ok: boolean; issues: string[] }> {
  const result = await loadConfig(path, databaseCredentials ? { env, databaseCredentials } : { env });
  return result.ok ? { ok: true, issues: [] } : { ok: false, issues: result.errors.map(formatIssue) };
}
