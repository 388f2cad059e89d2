import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { explainSystemError, MailgateError } from '../errors.js';
import { SECRET_KEY_ENV } from '../secrets/keyring.js';
import { DEFAULT_DATA_DIR, issuesBesides, knownKeysAt, rawConfigSchema } from './schema.js';
import { salvageChecks } from './salvage.js';
import { applyEnvOverrides, type AppliedOverride } from './env-overrides.js';
import type { Config, ConfigIssue } from './types.js';
import { buildConfig } from './build.js';
import { typeOf } from './units.js';

export type { ConfigIssue } from './types.js';

/** `warnings`: settings that work but expose something (cleartext to another host); never a refusal. */
/** `overrides`: the environment variables that replaced a value of the file (MAILGATE_LISTEN, …). */
export type LoadResult = { ok: true; config: Config; warnings: ConfigIssue[]; overrides: AppliedOverride[] } | { ok: false; errors: ConfigIssue[] };

export class ConfigError extends MailgateError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super('CONFIG_INVALID', `configuration is invalid:\n${issues.map(formatIssue).join('\n')}`);
    this.issues = issues;
  }
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col} ${i.message}`;
}

type Path = (string | number)[];
const keyOf = (path: readonly PropertyKey[]) => path.map(String).join('\u0000');

/** Where each value (and each mapping key) of the document stands. */
export class Positions {
  readonly values = new Map<string, { line: number; col: number }>();
  readonly keys = new Map<string, { line: number; col: number }>();

  /** The value at `path`, else its nearest ancestor. */
  of(path: readonly PropertyKey[]): { line: number; col: number } {
    for (let n = path.length; n >= 0; n--) {
      const p = this.values.get(keyOf(path.slice(0, n)));
      if (p) return p;
    }
    return { line: 1, col: 1 };
  }

  /** The key at `path` (for unknown keys), else the value. */
  keyOf(path: readonly PropertyKey[]): { line: number; col: number } {
    return this.keys.get(keyOf(path)) ?? this.of(path);
  }
}

const ENV_REF = /\$\$\{|\$\{([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Reads and validates a config file. Every problem is reported at once, each
 * with its position; the config returned is deep-frozen. `env` is the only
 * place environment variables are read.
 */
export interface LoadOptions {
  env?: Record<string, string | undefined>;
  /**
   * Which credentials the database of `dataDir` holds, for accounts naming a
   * credential the YAML does not define. Without it such a name is an error.
   */
  databaseCredentials?: (dataDir: string, store?: Config['store']) => Promise<{ has(name: string): boolean }>;
}

export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<LoadResult> {
  const env = opts.env ?? process.env;
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const at = (pos: { line: number; col: number }, message: string) => issues.push({ file: path, ...pos, message });

  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    at({ line: 1, col: 1 }, `cannot read config file: ${explainSystemError(err, `the file ${path}`)?.message ?? (err as Error).message}`);
    return { ok: false, errors: issues };
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, keepSourceTokens: true, uniqueKeys: true });
  for (const e of [...doc.errors, ...doc.warnings]) {
    const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
    at(pos, `YAML: ${e.message.split('\n')[0]}`);
  }
  if (doc.errors.length > 0) return { ok: false, errors: issues };

  const positions = new Positions();
  const posOf = (node: YamlNode | null | undefined) => {
    const offset = node?.range?.[0];
    return offset === undefined ? null : lineCounter.linePos(offset);
  };

  const walk = (node: unknown, path: Path): unknown => {
    if (isAlias(node)) return walk(node.resolve(doc), path);
    const pos = posOf(node as YamlNode);
    if (pos) positions.values.set(keyOf(path), pos);
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const kpos = posOf(pair.key as YamlNode);
        if (kpos) positions.keys.set(keyOf([...path, k]), kpos);
        if (!pair.value && kpos) positions.values.set(keyOf([...path, k]), kpos);
        out[k] = pair.value == null ? null : walk(pair.value, [...path, k]);
      }
      return out;
    }
    if (isSeq(node)) return node.items.map((item, i) => walk(item, [...path, i]));
    if (isScalar(node)) {
      const v = node.value;
      return typeof v === 'string' ? substitute(v, pos ?? { line: 1, col: 1 }, path) : v;
    }
    return node ?? null;
  };

  /** Values with an unset variable: already reported, so the schema's view of them is not. */
  const unresolved = new Set<string>();
  const substitute = (value: string, pos: { line: number; col: number }, path: Path): string =>
    value.replace(ENV_REF, (match, name: string | undefined) => {
      if (match === '$${') return '${';
      if (name === undefined || !ENV_NAME.test(name)) {
        at(pos, `invalid environment reference "${match}" (use \${NAME}; write $\${ for a literal \${)`);
        return '';
      }
      const v = env[name];
      if (v === undefined) {
        at(pos, `environment variable ${name} is not set`);
        unresolved.add(keyOf(path));
        // Keep the reference so later checks do not add a second, confusing error.
        return match;
      }
      return v;
    });

  const raw = walk(doc.contents, []) ?? {};
  // Container settings from the environment win over the file (src/config/env-overrides.ts).
  const env_ = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? applyEnvOverrides(raw as Record<string, unknown>, env) : { applied: [], problems: [] };
  for (const p of env_.problems) at({ line: 1, col: 1 }, p);
  const parsed = rawConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const report = (issue: z.core.$ZodIssue): void => {
      if (!unresolved.has(keyOf(issue.path))) reportZodIssue(issue, raw, positions, at);
      // A discriminator (incoming.protocol) naming no branch says nothing of the object's other
      // keys: check those too, as when incoming was one object, so one mistake hides no other.
      if (issue.code === 'invalid_union' && issue.discriminator !== undefined) {
        const objectPath = issue.path.slice(0, -1);
        issuesBesides(objectPath, issue.discriminator, valueAt(raw, objectPath) as Record<string, unknown>).forEach(report);
      }
    };
    parsed.error.issues.forEach(report);
  }
  if (!parsed.success || issues.length > 0) {
    // Every problem in one run: the file and name checks too, on what the schema could not accept.
    await salvageChecks(raw, {
      configDir: dirname(resolve(path)),
      at: (p, message) => at(positions.of(p), message),
      skip: (p) => unresolved.has(keyOf(p)),
      defaultDataDir: DEFAULT_DATA_DIR,
      ...(opts.databaseCredentials ? { databaseCredentials: opts.databaseCredentials } : {}),
    });
    return { ok: false, errors: sortIssues(issues) };
  }

  const unresolvedCredentials: { path: Path; name: string }[] = [];
  const config = await buildConfig(parsed.data, {
    configPath: resolve(path),
    configDir: dirname(resolve(path)),
    at: (p, message) => at(positions.of(p), message),
    atKey: (p, message) => at(positions.keyOf(p), message),
    warn: (p, message) => warnings.push({ file: path, ...positions.of(p), message: `warning: ${message}` }),
    unresolvedCredential: (p, name) => unresolvedCredentials.push({ path: p, name }),
  });
  if (config?.store.kind === 'postgres' && !env[SECRET_KEY_ENV] && config.secretKeyFile === undefined) {
    at(
      positions.of(['store', 'kind']),
      `kind: postgres needs the secret key from ${SECRET_KEY_ENV} or secretKeyFile: every replica must seal and open secrets with the same key, so a key generated into dataDir would not do`,
    );
  }
  if (unresolvedCredentials.length > 0) {
    const dataDir = config?.dataDir ?? resolve(dirname(resolve(path)), parsed.data.dataDir);
    const known = opts.databaseCredentials ? await opts.databaseCredentials(dataDir, config?.store) : new Set<string>();
    for (const u of unresolvedCredentials) {
      if (!known.has(u.name)) {
        at(positions.of(u.path), `credential "${u.name}" is not defined in credentials, nor in the database (mailgate credentials add)`);
      }
    }
  }
  if (issues.length > 0 || !config) return { ok: false, errors: sortIssues(issues) };
  return { ok: true, config: deepFreeze(config), warnings: sortIssues(warnings), overrides: env_.applied };
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

function reportZodIssue(
  issue: z.core.$ZodIssue,
  raw: unknown,
  positions: Positions,
  at: (pos: { line: number; col: number }, message: string) => void,
): void {
  const path = issue.path;
  const where = path.map(String).join('.') || '(top level)';
  switch (issue.code) {
    case 'unrecognized_keys':
      for (const key of issue.keys) {
        const known = knownKeysAt(path.filter((p) => typeof p !== 'number'));
        const hint = closest(key, known);
        at(positions.keyOf([...path, key]), `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
      return;
    case 'invalid_type': {
      const actual = valueAt(raw, path);
      const last = path[path.length - 1];
      if (actual === undefined) {
        at(positions.of(path.slice(0, -1)), `missing required key "${String(last)}" in ${path.slice(0, -1).map(String).join('.') || 'the top level'}`);
      } else {
        at(positions.of(path), `${where}: expected ${issue.expected}, got ${typeOf(actual)}`);
      }
      return;
    }
    case 'invalid_value':
      at(positions.of(path), `${where}: must be one of ${issue.values.map((v) => String(v)).join(', ')}`);
      return;
    case 'invalid_union': {
      if (issue.discriminator !== undefined) {
        // Missing or naming no branch: said as zod says it of an enum.
        const options = 'options' in issue ? (issue.options ?? []) : [];
        at(positions.of(path), `${where}: must be one of ${options.map(String).join(', ')}`);
        return;
      }
      // The other unions are "string or number" units; show the inner custom message when there is one.
      const inner = issue.errors.flat().find((e) => e.code === 'custom');
      at(positions.of(path), `${where}: ${inner?.message ?? 'invalid value'}`);
      return;
    }
    case 'custom':
      // A message that names its own key (server.listen) stands as it is.
      at(positions.of(path), issue.params?.['standalone'] === true ? issue.message : `${where}: ${issue.message}`);
      return;
    default:
      at(positions.of(path), `${where}: ${issue.message}`);
  }
}

/** Levenshtein-closest known key within distance 2, for typo hints. */
function closest(word: string, candidates: string[]): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] ?? 0;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] ?? 0;
      dp[j] = Math.min((dp[j] ?? 0) + 1, (dp[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length] ?? 0;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
