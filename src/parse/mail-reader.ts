import { MailParser, type AddressObject, type HeaderLines, type Headers, type MailParserOptions } from 'mailparser';

/** What MailParser emits for an attachment: its content is a stream, `size` and `checksum` set when it ends. */
interface AttachmentData {
  type: 'attachment';
  content: NodeJS.EventEmitter & { read(): Buffer | null };
  filename?: string;
  contentType: string;
  contentDisposition?: string;
  contentId?: string;
  related?: boolean;
  size?: number;
  checksum?: string;
  release(): void;
}

interface TextData {
  type: 'text';
  text?: string;
  html?: string | false;
}

/** An attachment as read: its content only when it was kept (see readMail). */
export interface ReadAttachment {
  filename: string | undefined;
  contentType: string;
  contentDisposition: string | undefined;
  contentId: string | undefined;
  related: boolean;
  /** Decoded size in bytes. */
  size: number;
  /** SHA-256 of the decoded content, hex (mailparser hashes it as it streams). */
  sha256: string;
  /** The decoded bytes, or null when they were not kept (over the limits). */
  content: Buffer | null;
}

/** What mailgate needs of a parsed message (simpleParser's shape, attachments bounded). */
export interface ReadMail {
  headers: Headers;
  headerLines: HeaderLines;
  subject: string | undefined;
  from: AddressObject | undefined;
  to: AddressObject | AddressObject[] | undefined;
  cc: AddressObject | AddressObject[] | undefined;
  replyTo: AddressObject | undefined;
  messageId: string | undefined;
  inReplyTo: string | undefined;
  references: string | string[] | undefined;
  date: Date | undefined;
  text: string | undefined;
  html: string | false | undefined;
  attachments: ReadAttachment[];
}

export interface KeepLimits {
  /** An attachment whose content grows past this is not kept (it would be sent with contentOmitted anyway). */
  perAttachment: number;
  /** All kept attachment content together at most; later ones are not kept once it is reached. */
  total: number;
}

/**
 * mailparser's simpleParser, but an attachment's content is kept only while
 * it stays within `keep` (its SHA-256 and size are still computed, as the
 * bytes stream past): simpleParser buffers every attachment whole, so a
 * 34 MB attachment cost its 34 MB plus copies although the webhook body
 * would omit it. Settles once, on the first error or at the end.
 */
export function readMail(raw: Buffer, options: MailParserOptions, keep: KeepLimits): Promise<ReadMail> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err: Error | null, mail?: ReadMail) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(mail as ReadMail);
    };
    const parser = new MailParser({ ...options, checksumAlgo: 'sha256' } as MailParserOptions);
    const attachments: ReadAttachment[] = [];
    let headers: Headers = new Map();
    let headerLines: HeaderLines = [];
    let text: string | undefined;
    let html: string | false | undefined;
    let kept = 0;
    let reading = false;
    parser.on('error', (err: Error) => settle(err));
    parser.on('headers', (h: Headers) => {
      headers = h;
      headerLines = (parser as unknown as { headerLines: HeaderLines }).headerLines;
    });
    const reader = (): void => {
      reading = true;
      const data = parser.read() as AttachmentData | TextData | null;
      if (data === null) {
        reading = false;
        return;
      }
      if (data.type === 'text') {
        text = data.text;
        html = data.html;
        reader();
        return;
      }
      const a = data;
      const chunks: Buffer[] = [];
      let size = 0;
      let keeping = true;
      const stream = a.content;
      stream.on('readable', () => {
        let chunk: Buffer | null;
        while ((chunk = stream.read()) !== null) {
          size += chunk.length;
          if (keeping && (size > keep.perAttachment || kept + size > keep.total)) {
            keeping = false;
            chunks.length = 0;
          }
          if (keeping) chunks.push(chunk);
        }
      });
      stream.on('end', () => {
        const content = keeping ? Buffer.concat(chunks, size) : null;
        if (content) kept += content.length;
        attachments.push({
          filename: a.filename,
          contentType: a.contentType,
          contentDisposition: a.contentDisposition,
          contentId: a.contentId,
          related: a.related === true,
          size: a.size ?? size,
          sha256: a.checksum ?? '',
          content,
        });
        a.release();
        reader();
      });
    };
    parser.on('readable', () => {
      if (!reading) reader();
    });
    parser.on('end', () => {
      const get = <T>(key: string) => headers.get(key) as T | undefined;
      settle(null, {
        headers,
        headerLines,
        subject: get<string>('subject'),
        from: get<AddressObject>('from'),
        to: get<AddressObject | AddressObject[]>('to'),
        cc: get<AddressObject | AddressObject[]>('cc'),
        replyTo: get<AddressObject>('reply-to'),
        messageId: get<string>('message-id'),
        inReplyTo: get<string>('in-reply-to'),
        references: get<string | string[]>('references'),
        date: get<Date>('date'),
        text,
        html,
        attachments,
      });
    });
    parser.end(raw);
  });
}
