import { MailgateError, type ErrorCode } from '../../errors.js';
import type { Pop3Response } from './protocol.js';

/**
 * Every failure of the POP3 client, under the catalogue (src/errors.ts):
 * `Pop3Error.kind` says what happened on the wire, its code and failure
 * class what that means for the next try.
 */

/** `too_large`: a body passed the limit its command set; the connection is closed, the client unusable. */
export type Pop3ErrorKind = 'auth' | 'protocol' | 'timeout' | 'connection' | 'tls' | 'too_large';

/** The JSON of an RFC 7628 §3.2.2 error challenge (Google's XOAUTH2 sends the same). */
export interface OAuthErrorChallenge {
  status?: string;
  schemes?: string;
  scope?: string;
}

/** RFC 2449 §8 response codes that make a refused login temporary. */
const TRANSIENT_LOGIN_CODES = new Set(['SYS/TEMP', 'IN-USE', 'LOGIN-DELAY']);

/** The catalogue code of a POP3 failure: its kind, and for a refused login whether the server called it temporary. */
function pop3Code(kind: Pop3ErrorKind, responseCode: string | null): ErrorCode {
  switch (kind) {
    case 'auth':
      return TRANSIENT_LOGIN_CODES.has(responseCode ?? '') ? 'AUTH_UNAVAILABLE' : 'AUTH_FAILED';
    case 'protocol':
      return 'PROTOCOL_ERROR';
    case 'timeout':
      return 'TIMEOUT';
    case 'connection':
      return 'CONNECTION_FAILED';
    case 'tls':
      return 'TLS_FAILED';
    case 'too_large':
      return 'RESPONSE_TOO_LARGE';
  }
}

/** A POP3 failure: `kind` says what happened, the catalogue code (and its failure class) what it means. */
export class Pop3Error extends MailgateError {
  readonly kind: Pop3ErrorKind;
  /** the server's words after -ERR, if any */
  readonly serverText: string | null;
  /** for a SASL OAuth error challenge: the decoded JSON {status, schemes, scope} */
  readonly oauth: OAuthErrorChallenge | null;
  /**
   * RFC 2449 §8 response code of the -ERR, upper-cased: `SYS/TEMP`, `IN-USE`
   * and `LOGIN-DELAY` mark a failed login as transient, `AUTH` and `SYS/PERM`
   * as the credentials' or the account's fault.
   */
  readonly responseCode: string | null;
  /** kind `too_large`: the limit, in bytes, that the answer passed */
  readonly limitBytes: number | null;

  constructor(
    kind: Pop3ErrorKind,
    message: string,
    options: { serverText?: string | null; oauth?: OAuthErrorChallenge | null; responseCode?: string | null; limitBytes?: number | null; cause?: unknown } = {},
  ) {
    super(pop3Code(kind, options.responseCode ?? null), message, options.cause !== undefined ? { cause: options.cause } : {});
    this.name = 'Pop3Error';
    this.kind = kind;
    this.serverText = options.serverText ?? null;
    this.oauth = options.oauth ?? null;
    this.responseCode = options.responseCode ?? null;
    this.limitBytes = options.limitBytes ?? null;
  }
}

/** A Pop3Error for an -ERR answer; the message names only the verb, never the arguments (secrets). */
export function serverError(kind: Pop3ErrorKind, verb: string, response: Pop3Response, oauth: OAuthErrorChallenge | null = null): Pop3Error {
  const said = response.text === '' ? '' : `: ${response.text}`;
  return new Pop3Error(kind, `POP3 ${verb} failed${said}`, { serverText: response.text, oauth, responseCode: response.code });
}

export class Pop3ProtocolError extends MailgateError {
  constructor(message: string) {
    super('PROTOCOL_ERROR', message);
    this.name = 'Pop3ProtocolError';
  }
}

/** A multi-line body grew past the limit its command set; the rest of the stream is unread. */
export class ResponseTooLargeError extends MailgateError {
  constructor(readonly limitBytes: number) {
    super('RESPONSE_TOO_LARGE', `the answer is larger than the limit of ${limitBytes} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}
