import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { MailgateError } from '../../src/errors.js';

/** One log line, as the daemon would write it. */
function logged(write: (log: ReturnType<typeof createLogger>) => void): Record<string, unknown> {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level: 'info', destination });
  write(log);
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
}

describe('log redaction (the backstop behind masking at the source)', () => {
  it('masks secrets at the top level, one level down and in request headers', () => {
    const line = logged((log) =>
      log.info(
        {
          password: 'p1',
          clientSecret: 'c1',
          refresh_token: 'r1',
          accessToken: 'a1',
          code_verifier: 'v1',
          auth: { pass: 'p2', accessToken: 'a2' },
          credential: { clientSecret: 'c2', secret: 's2' },
          query: { code: 'authorization-code', state: 'st' },
          req: { headers: { authorization: 'Bearer t', cookie: 'mailgate_session=x' } },
        },
        'x',
      ),
    );
    expect(JSON.stringify(line)).not.toMatch(/p1|c1|r1|a1|v1|p2|a2|c2|s2|authorization-code|Bearer t|mailgate_session=x/);
    expect(line).toMatchObject({ password: '[redacted]', auth: { pass: '[redacted]' }, query: { code: '[redacted]', state: 'st' } });
  });

  it('keeps ordinary fields, exit codes and error codes readable', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:993'), { code: 'ECONNREFUSED' });
    const line = logged((log) => log.warn({ exitCode: 1, code: 'SQLITE_BUSY', account: 'support', state: 'idle', err }, 'x'));
    expect(line).toMatchObject({ exitCode: 1, code: 'SQLITE_BUSY', account: 'support', state: 'idle', err: { code: 'ECONNREFUSED' } });
    const mg = logged((log) => log.error({ err: new MailgateError('AUTH_FAILED', 'refused') }, 'x'));
    expect(mg).toMatchObject({ err: { code: 'AUTH_FAILED', message: 'refused' } });
  });
});
