import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }>;
};

describe('the Node.js floor in package.json is true for every locked package (no EBADENGINE on npm ci)', () => {
  it('every package that names a Node range accepts the lowest Node mailgate promises', () => {
    const floor = semver.minVersion(pkg.engines.node);
    expect(floor?.version).toBe('20.19.0');
    const refused = Object.entries(lock.packages)
      .filter(([path]) => path !== '')
      .flatMap(([path, p]) => {
        const range = !Array.isArray(p.engines) ? p.engines?.node : undefined;
        return range && !semver.satisfies(floor ?? '0.0.0', range) ? [`${path.replace(/^.*node_modules\//, '')} wants node ${range}`] : [];
      });
    expect(refused).toEqual([]);
  });

  it('the README states the same floor', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('Node.js 20.19 or newer');
  });
});
