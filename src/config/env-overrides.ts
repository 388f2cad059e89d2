import { parseListen } from './schema.js';

/**
 * Settings the environment may override, for containers: the image and the
 * orchestrator decide where mailgate listens, how browsers reach it and
 * where its state lives, without a mounted config repeating them. A set
 * variable wins over the file; `config check` prints each one that applies,
 * and the daemon logs them at start.
 */
export const ENV_OVERRIDES = [
  { variable: 'MAILGATE_LISTEN', key: 'server.listen', path: ['server', 'listen'] },
  { variable: 'MAILGATE_PUBLIC_URL', key: 'server.publicUrl', path: ['server', 'publicUrl'] },
  { variable: 'MAILGATE_DATA_DIR', key: 'dataDir', path: ['dataDir'] },
] as const;

export interface AppliedOverride {
  variable: string;
  key: string;
  value: string;
}

/** What is wrong with a value, in the admin's words, or null. */
function problem(variable: string, value: string): string | null {
  if (value.trim() === '') return `${variable} is set but empty; unset it to use the config file's value`;
  if (variable === 'MAILGATE_LISTEN' && !parseListen(value)) return `${variable} must be host:port (e.g. 0.0.0.0:8025 or [::]:8025), got "${value}"`;
  if (variable === 'MAILGATE_PUBLIC_URL') {
    let url: URL | null;
    try {
      url = new URL(value);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) return `${variable} must be an http(s) URL (how browsers reach mailgate), got "${value}"`;
  }
  return null;
}

/**
 * Writes the set variables into the raw document (before the schema reads
 * it, so every rule of the key applies). Returns what was applied and the
 * variables whose value is unusable.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: Record<string, string | undefined>): { applied: AppliedOverride[]; problems: string[] } {
  const applied: AppliedOverride[] = [];
  const problems: string[] = [];
  for (const o of ENV_OVERRIDES) {
    const value = env[o.variable];
    if (value === undefined) continue;
    const bad = problem(o.variable, value);
    if (bad) {
      problems.push(bad);
      continue;
    }
    let parent = raw;
    for (const seg of o.path.slice(0, -1)) {
      const next = parent[seg];
      if (next !== null && next !== undefined && (typeof next !== 'object' || Array.isArray(next))) break; // the schema reports the bad section
      parent[seg] = next ?? {};
      parent = parent[seg] as Record<string, unknown>;
    }
    parent[o.path[o.path.length - 1] as string] = value;
    applied.push({ variable: o.variable, key: o.key, value });
  }
  return { applied, problems };
}
