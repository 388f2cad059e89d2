import { formatIssue, loadConfig, type LoadOptions } from './load.js';

/** `mailgate config check`: ok, or every problem as `file:line:col message`. */
export async function checkConfigFile(
  path: string,
  env: Record<string, string | undefined> = process.env,
  databaseCredentials?: LoadOptions['databaseCredentials'],
): Promise<{ ok: boolean; issues: string[]; warnings: string[]; overrides: string[] }> {
  const result = await loadConfig(path, databaseCredentials ? { env, databaseCredentials } : { env });
  return result.ok
    ? { ok: true, issues: [], warnings: result.warnings.map(formatIssue), overrides: result.overrides.map((o) => `${o.variable}=${o.value} overrides ${o.key}`) }
    : { ok: false, issues: result.errors.map(formatIssue), warnings: [], overrides: [] };
}
