/**
 * The API reference in docs/api.md, rendered from the OpenAPI document that
 * GET /openapi.json serves (`node scripts/api-doc.mjs` writes it; a test
 * checks it is current).
 */

interface Operation {
  summary?: string;
  tags?: string[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: { type?: unknown; maxLength?: number } }[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
  security?: unknown[];
}
interface Schema {
  type?: unknown;
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  anyOf?: Schema[];
  description?: string;
  required?: string[];
}

export interface OpenApiDoc {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
}

function typeOf(s: Schema | undefined): string {
  if (!s) return 'any';
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  const t = Array.isArray(s.type) ? s.type.join(' \\| ') : typeof s.type === 'string' ? s.type : 'any';
  if (s.type === 'array') return `array of ${typeOf(s.items)}`;
  return t;
}

function fields(s: Schema | undefined): string {
  if (!s?.properties) return '';
  return Object.entries(s.properties)
    .map(([k, v]) => `\`${k}\`${s.required?.includes(k) ? '' : '?'}: ${typeOf(v)}`)
    .join(', ');
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

export function renderApiReference(doc: OpenApiDoc): string {
  const lines: string[] = [
    `# ${doc.info.title} HTTP API reference`,
    '',
    '<!-- Generated from GET /openapi.json by `node scripts/api-doc.mjs` (after `npm run build`); test/integration/daemon/openapi.test.ts checks it is current. Do not edit by hand. -->',
    '',
    doc.info.description ?? '',
    'The machine-readable document is `GET /openapi.json` (OpenAPI 3); error answers are `{ "error", "code" }` (plus `systemCode` when a socket, DNS, TLS or file failure is behind it).',
    '',
  ];
  const byTag = new Map<string, string[]>();
  for (const path of Object.keys(doc.paths).sort()) {
    for (const method of METHODS) {
      const op = doc.paths[path]?.[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? 'other';
      const out: string[] = [];
      out.push(`### \`${method.toUpperCase()} ${path}\``, '');
      if (op.summary) out.push(op.summary.charAt(0).toUpperCase() + op.summary.slice(1) + '.', '');
      if (op.security?.length) out.push('Needs `Authorization: Bearer <adminToken>`.', '');
      const params = op.parameters ?? [];
      if (params.length) {
        out.push('| parameter | in | type | |', '|---|---|---|---|');
        for (const p of params) out.push(`| \`${p.name}\` | ${p.in} | ${typeOf(p.schema as Schema)} | ${p.required ? 'required' : 'optional'}${p.description ? `: ${p.description}` : ''} |`);
        out.push('');
      }
      const body = op.requestBody?.content?.['application/json']?.schema;
      if (body) out.push(`Body: ${fields(body)}.`, '');
      const responses = Object.entries(op.responses ?? {});
      if (responses.length) {
        out.push('| answer | body |', '|---|---|');
        for (const [status, r] of responses) {
          const schema = r.content ? Object.values(r.content)[0]?.schema : undefined;
          const shape = fields(schema) || (schema ? typeOf(schema) : '');
          out.push(`| ${status} | ${shape || r.description || ''} |`);
        }
        out.push('');
      }
      byTag.set(tag, [...(byTag.get(tag) ?? []), ...out]);
    }
  }
  for (const [tag, out] of byTag) lines.push(`## ${tag}`, '', ...out);
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}
