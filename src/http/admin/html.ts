import { escapeHtml } from '../routes/oauth.js';

/** Markup that is already safe: only `html` and `raw` make one. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

type Part = SafeHtml | string | number | boolean | null | undefined | readonly Part[];

function render(v: Part): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

/**
 * Tagged template for markup: every interpolated value is escaped unless it
 * is itself SafeHtml, so data (names, provider errors, webhook bodies) can
 * never become markup. `false`/`null`/`undefined` render as nothing, arrays
 * are concatenated.
 */
export function html(strings: TemplateStringsArray, ...values: Part[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/** Trusted constant markup (the stylesheet, the copy script). Never pass data. */
export function raw(trusted: string): SafeHtml {
  return new SafeHtml(trusted);
}
