import { describe, expect, it } from 'vitest';
import { parseThreadCount } from '../../../src/parse/parse-pool.js';

describe('parse thread count', () => {
  it('parses on a thread even on one or two cores, one per core beyond the first up to 4, and obeys MAILGATE_PARSE_THREADS', () => {
    expect(parseThreadCount({}, 1)).toBe(1);
    expect(parseThreadCount({}, 2)).toBe(1);
    expect(parseThreadCount({}, 3)).toBe(2);
    expect(parseThreadCount({}, 16)).toBe(4);
    expect(parseThreadCount({ MAILGATE_PARSE_THREADS: '2' }, 2)).toBe(2);
    expect(parseThreadCount({ MAILGATE_PARSE_THREADS: '0' }, 8)).toBe(0);
    expect(parseThreadCount({ MAILGATE_PARSE_THREADS: 'many' }, 2)).toBe(1);
  });
});
