import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';

export interface SinkMessage {
  from: string;
  to: string[];
  raw: string;
  receivedAt: number;
}

/**
 * A real SMTP receiver on loopback (smtp-server). Dovecot's submission relays
 * to it; it can refuse (e.g. 550) or go down and come back on the same port.
 */
export class SmtpSink {
  readonly messages: SinkMessage[] = [];
  #server: SMTPServer | null = null;
  #rejects: { code: number; message: string }[] = [];
  port = 0;

  static async start(port = 0): Promise<SmtpSink> {
    const sink = new SmtpSink();
    await sink.#listen(port);
    return sink;
  }

  async #listen(port: number): Promise<void> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      // Going down must be quick: by default close() waits 30 s for open sessions (Dovecot keeps its relay session).
      closeTimeout: 200,
      size: 64 * 1024 * 1024,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const reject = this.#rejects.shift();
          if (reject) {
            const err = Object.assign(new Error(reject.message), { responseCode: reject.code });
            callback(err);
            return;
          }
          this.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
            receivedAt: Date.now(),
          });
          callback();
        });
      },
    });
    server.on('error', () => {
      // connection-level errors are the client's problem in tests
    });
    await new Promise<void>((resolve, reject) => {
      server.listen(port, '127.0.0.1', () => resolve());
      server.once('error', reject);
    });
    const addr = server.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    this.#server = server;
  }

  /** The next `count` messages are refused at DATA with this reply. */
  rejectNext(code: number, message: string, count = 1): void {
    for (let i = 0; i < count; i++) this.#rejects.push({ code, message });
  }

  async setDown(down: boolean): Promise<void> {
    if (down && this.#server) {
      const s = this.#server;
      this.#server = null;
      await new Promise<void>((r) => s.close(() => r()));
    } else if (!down && !this.#server) {
      await this.#listen(this.port);
    }
  }

  async waitFor(predicate: (s: SmtpSink) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (Date.now() > deadline) throw new Error(`smtp sink: condition not met within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async close(): Promise<void> {
    await this.setDown(true);
  }
}

/**
 * An HTTP control port for the relay sink, which lives in vitest's global
 * setup process while tests run in workers:
 * GET /messages, POST /clear, POST /reject {code, message, count}, POST /down {down}.
 */
export async function startSinkControl(sink: SmtpSink): Promise<{ url: string; close: () => Promise<void> }> {
  const server: HttpServer = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
        const reply = (status: number, data: unknown) => {
          res.writeHead(status, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(data));
        };
        switch (`${req.method} ${req.url}`) {
          case 'GET /messages':
            return reply(200, { port: sink.port, messages: sink.messages });
          case 'POST /clear':
            sink.messages.length = 0;
            return reply(200, { ok: true });
          case 'POST /reject':
            sink.rejectNext(Number(body.code), String(body.message), Number(body.count ?? 1));
            return reply(200, { ok: true });
          case 'POST /down':
            await sink.setDown(Boolean(body.down));
            return reply(200, { ok: true });
          default:
            return reply(404, { error: 'not found' });
        }
      })().catch((err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
