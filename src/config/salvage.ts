import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { unreadableFile } from './build.js';

type Path = (string | number)[];

export interface SalvageContext {
  configDir: string;
  /** Report a problem at the value at path. */
  at: (path: Path, message: string) => void;
  /** Values whose environment variable is unset (already reported). */
  skip: (path: Path) => boolean;
  databaseCredentials?: (dataDir: string) => Promise<{ has(name: string): boolean }>;
  defaultDataDir: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The checks buildConfig makes on a valid file, made on one the schema
 * refused, so that `config check` reports every problem in one run: secret
 * files that cannot be read (every `*File` key holding a string) and names
 * that are not defined (an account's webhook, its credentials, also looked
 * up in the database). Works on the raw document and skips whatever is not
 * the expected shape (the schema has said so already).
 */
export async function salvageChecks(raw: unknown, ctx: SalvageContext): Promise<void> {
  if (!isRecord(raw)) return;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(ctx.configDir, p));

  const files: { path: Path; key: string; file: string }[] = [];
  const walk = (node: unknown, path: Path) => {
    if (Array.isArray(node)) node.forEach((v, i) => walk(v, [...path, i]));
    else if (isRecord(node)) {
      for (const [k, v] of Object.entries(node)) {
        if (k.endsWith('File') && typeof v === 'string' && v !== '') files.push({ path: [...path, k], key: k, file: v });
        else walk(v, [...path, k]);
      }
    }
  };
  walk(raw, []);
  for (const f of files) {
    if (ctx.skip(f.path)) continue;
    try {
      await readFile(abs(f.file));
    } catch (err) {
      ctx.at(f.path, unreadableFile(f.key, abs(f.file), err));
    }
  }

  const names = (section: unknown) =>
    new Set(Array.isArray(section) ? section.flatMap((x) => (isRecord(x) && typeof x.name === 'string' ? [x.name] : [])) : []);
  const hooks = names(raw.webhooks);
  const creds = names(raw.credentials);
  const wanted: { path: Path; name: string }[] = [];
  const accounts = Array.isArray(raw.accounts) ? raw.accounts : [];
  accounts.forEach((a, i) => {
    if (!isRecord(a)) return;
    const base: Path = ['accounts', i];
    if (typeof a.webhook === 'string' && a.webhook !== '' && !hooks.has(a.webhook) && !ctx.skip([...base, 'webhook'])) {
      ctx.at([...base, 'webhook'], `webhook "${a.webhook}" is not defined in webhooks`);
    }
    for (const side of ['incoming', 'outgoing'] as const) {
      const s = a[side];
      const auth = isRecord(s) ? s.auth : undefined;
      const p: Path = [...base, side, 'auth', 'credential'];
      if (isRecord(auth) && typeof auth.credential === 'string' && auth.method !== 'password' && !creds.has(auth.credential) && !ctx.skip(p)) {
        wanted.push({ path: p, name: auth.credential });
      }
    }
  });
  if (wanted.length > 0) {
    const dataDir = abs(typeof raw.dataDir === 'string' ? raw.dataDir : ctx.defaultDataDir);
    let known: { has(name: string): boolean } = new Set<string>();
    try {
      if (ctx.databaseCredentials) known = await ctx.databaseCredentials(dataDir);
    } catch {
      // an unreadable database is for the daemon to report; here only the YAML is judged
    }
    for (const w of wanted) {
      if (!known.has(w.name)) ctx.at(w.path, `credential "${w.name}" is not defined in credentials, nor in the database (mailgate credentials add)`);
    }
  }
}
