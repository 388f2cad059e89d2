/**
 * What quoted history and sign-offs look like, per client and language.
 *
 * Every pattern here is tested against one trimmed line (or up to three
 * joined lines of an attribution that a client wrapped), never against the
 * whole body, and only when that candidate is at most MAX_CANDIDATE_CHARS
 * long. Each pattern is anchored, uses no nested quantifier and no two
 * unbounded wildcards, so a match costs time linear in the candidate: there
 * is no input on which they backtrack catastrophically.
 */

/** Longer lines are never a header, a separator or a sign-off. */
export const MAX_CANDIDATE_CHARS = 600;

/** Every client's attribution carries the time ("9:14") or the sender's address. */
const TIME_OR_ADDRESS = /\d:\d\d|@/;
const HAS_ADDRESS_OR_DIGIT = /[@\d]/;

/**
 * "On … wrote:" in its translations: a language's opening word (anchored at
 * the start) and its verb (anchored at the end). Both halves must match and
 * the line must carry a time or an address, so "On 5 March your colleague
 * wrote:" in the customer's own text is no attribution.
 */
const ATTRIBUTION_PAIRS: readonly (readonly [RegExp, RegExp])[] = [
  [/^On\s/, /[\s,]wrote\s?:$/], // Gmail, Apple Mail, Thunderbird, Mutt, Fastmail, Spark, Proton, Yahoo
  [/^Am\s/, /\sschrieb:$|\sschrieb\s[^:]{1,200}:$/], // de: "Am 05.03.2024 um 09:14 schrieb NAME <ADDR>:"
  [/^Le\s/, /\sa\sécrit\s?:$/], // fr: "Le 5 mars 2024 à 09:14, NAME a écrit :"
  [/^El\s/, /\sescribió\s?:$/], // es: "El mar, 5 mar 2024 a las 9:14, NAME (<ADDR>) escribió:"
  [/^Op\s/, /\sschreef:$|\sschreef\s[^:]{1,200}:$|\shet volgende geschreven\s?:$/], // nl (Gmail, Apple Mail)
  [/^Em\s/, /\sescreveu\s?:$/], // pt: "Em ter., 5 de mar. de 2024 às 09:14, NAME escreveu:"
  [/^Il\s/, /\sha\sscritto\s?:$/], // it: "Il giorno mar 5 mar 2024 alle ore 09:14 NAME ha scritto:"
  [/^(?:Den|På)\s/, /\sskrev:$|\sskrev\s[^:]{1,200}:$/], // sv, da, no: "Den tis 5 mars 2024 kl 09:14 skrev NAME:"
  [/^(?:W dniu|Dnia)\s/, /\s(?:pisze|napisał|napisała|napisał\(a\))\s?:$/], // pl
  [/^\d{4}年\d{1,2}月\d{1,2}日/, /[>＞]\s?[:：]$/], // ja Gmail: "2024年3月5日(火) 9:14 NAME <ADDR>:"
  [/^\d{4}[/.-]\d{1,2}[/.-]\d{1,2}/, /の(?:メール|メッセージ)\s?[:：]$/], // ja Apple Mail
  [/^\d{4}년\s?\d{1,2}월/, /작성\s?[:：]$/], // ko Gmail: "2024년 3월 5일 (화) 오전 9:14, NAME님이 작성:"
  [/^[^:]{1,200}\s(?:schrieb am|wrote on)\s/, /:$/], // "NAME schrieb am DATE:", Notes "NAME wrote on DATE:"
];

/** Attributions recognised by their ending alone (the verb says it all), with a date in them. */
const ATTRIBUTION_ENDINGS: readonly RegExp[] = [
  /(?:写道|寫道)\s?[:：]$/, // zh: "NAME <ADDR> 于2024年3月5日周二 09:14写道：", Apple "2024年3月5日 09:14，NAME 写道："
  /の(?:メール|メッセージ)\s?[:：]$/, // ja
  /\sa\sécrit\s?:$/, // fr without the "Le" (some webmails)
  /\sescribió\s?:$/,
  /\sescreveu\s?:$/,
];

/** "NAME wrote:" without a date: only an attribution when quoted lines follow. */
const WEAK_ATTRIBUTION = /[\s,](?:wrote|schrieb|a écrit|escribió|escreveu|schreef|ha scritto|skrev|kirjoitti)\s?[:：]$/;

export type AttributionStrength = 'strong' | 'weak';

/** Is this (trimmed) candidate an attribution line, and how sure are we? */
export function attributionStrength(s: string): AttributionStrength | null {
  if (s.length === 0 || s.length > MAX_CANDIDATE_CHARS) return null;
  if (TIME_OR_ADDRESS.test(s)) {
    for (const [start, end] of ATTRIBUTION_PAIRS) if (start.test(s) && end.test(s)) return 'strong';
    for (const end of ATTRIBUTION_ENDINGS) if (end.test(s)) return 'strong';
    // Yahoo Mail for Android puts the quoted text on the attribution's own line.
    if (/^On\s/.test(s) && s.includes('> wrote:')) return 'strong';
  }
  if (WEAK_ATTRIBUTION.test(s)) return 'weak';
  // Any language: a line ending in a colon that names a date or an address,
  // right above quoted lines ("… tarihinde şunu yazdı:").
  if ((s.endsWith(':') || s.endsWith('：')) && HAS_ADDRESS_OR_DIGIT.test(s) && s.length <= 300) return 'weak';
  return null;
}

/**
 * Lines that begin quoted history whatever follows: Outlook's "-----Original
 * Message-----", forward separators of Gmail, Thunderbird, Samsung, QQ, and
 * Apple Mail's "Begin forwarded message:" in the languages we support.
 */
const SEPARATOR_DASHED = new RegExp(
  '^-{2,}[ \\t]*(?:' +
    [
      'original message',
      'original-nachricht',
      'reply message',
      'forwarded message',
      'ursprüngliche nachricht',
      'weitergeleitete nachricht',
      "message d'origine",
      'message d’origine',
      'message original',
      'message transféré',
      'mensaje original',
      'mensaje reenviado',
      'oorspronkelijk bericht',
      'origineel bericht',
      'doorgestuurd bericht',
      'mensagem original',
      'mensagem encaminhada',
      'messaggio originale',
      'messaggio inoltrato',
      'oprindelig meddelelse',
      'ursprungligt meddelande',
      'opprinnelig melding',
      'wiadomość oryginalna',
      'alkuperäinen viesti',
      '原始邮件',
      '原始郵件',
      '转发邮件',
      '轉寄郵件',
      '元のメッセージ',
      '転送メッセージ',
    ].join('|') +
    ')[ \\t]*-{2,}$',
  'iu',
);

const SEPARATOR_SENTENCE =
  /^(?:Begin forwarded message|Anfang der weitergeleiteten Nachricht|Début du message réexpédié|Début du message transféré|Inicio del mensaje reenviado|Begin doorgestuurd bericht|Início da mensagem reencaminhada|Início da mensagem encaminhada|Inizio messaggio inoltrato|転送されたメッセージ|以下是转发的邮件|Vidarebefordrat brev)\s?[:：]$/iu;

/** Zoho Mail: "---- On Tue, 05 Mar 2024 09:14:00 +0100 NAME <ADDR> wrote ---". */
const SEPARATOR_ZOHO = /^-{2,}[ \t]*On\s.{1,400}\swrote[ \t]*-{2,}$/;

export function isSeparator(s: string): boolean {
  if (s.length > MAX_CANDIDATE_CHARS) return false;
  if (s.charCodeAt(0) === 0x2d /* - */) return SEPARATOR_DASHED.test(s) || (SEPARATOR_ZOHO.test(s) && TIME_OR_ADDRESS.test(s));
  return endsWithColon(s) && SEPARATOR_SENTENCE.test(s);
}

function endsWithColon(s: string): boolean {
  const c = s.charCodeAt(s.length - 1);
  return c === 0x3a /* : */ || c === 0xff1a; /* ： */
}

/** A field name is short: its colon comes within the first few characters (cheap test before the pattern). */
function hasEarlyColon(s: string): boolean {
  const head = s.length > 24 ? s.slice(0, 24) : s;
  return head.includes(':') || head.includes('：');
}

/**
 * Outlook's header block ("From: … Sent: … To: … Subject: …"), the same in
 * Outlook for Mac, Windows Mail, BlackBerry, Lotus Notes and Gmail forwards,
 * with the field names of localized clients. Optional `*bold*` marks and
 * French typography (a blank before the colon) and full-width colons.
 */
const FIELD = (names: string): RegExp => new RegExp(`^\\*{0,2}(?:${names})\\*{0,2}[ \\t\\u00a0]?[:：]`, 'iu');

const FROM_FIELD = FIELD('From|Von|De|Van|Da|Från|Fra|Od|Lähettäjä|差出人|送信者|发件人|發件人|寄件者|寄件人|보낸 사람|От');
const DATE_FIELD = FIELD(
  'Sent|Date|Gesendet|Datum|Envoyé|Enviado|Enviado el|Fecha|Verzonden|Verstuurd|Data|Inviato|Skickat|Sendt|Wysłano|Lähetetty|送信日時|日付|发送时间|發送時間|日期|时间|寄件日期|傳送時間|보낸 날짜|Отправлено|Дата',
);
const TO_OR_SUBJECT_FIELD = FIELD(
  'To|Subject|An|Betreff|À|A|Objet|Para|Asunto|Aan|Onderwerp|Assunto|Oggetto|Till|Ämne|Til|Emne|Do|Temat|Vastaanottaja|Aihe|宛先|件名|收件人|收件者|主题|主題|主旨|받는 사람|제목|Кому|Тема|Копия|Cc|Reply To',
);

/** How many lines a header block may spread over. */
export const HEADER_BLOCK_SPAN = 7;

/** Can a header block start with this line? Outlook's starts with From, GMX/WEB.DE's with Gesendet (the date). */
export function isHeaderBlockStart(s: string): boolean {
  return s.length <= MAX_CANDIDATE_CHARS && hasEarlyColon(s) && (FROM_FIELD.test(s) || DATE_FIELD.test(s));
}

/**
 * Are these lines (a block start and the lines after it, up to a blank
 * line) a header block: a sender, a date and a recipient or subject? Pasted
 * "From/To/Subject" without a date is the customer's own text.
 */
export function isHeaderBlock(block: readonly string[]): boolean {
  let from = false;
  let dated = false;
  let addressed = false;
  for (const s of block) {
    if (s.length > MAX_CANDIDATE_CHARS) return false;
    if (!hasEarlyColon(s)) continue;
    if (!from && FROM_FIELD.test(s)) from = true;
    else if (!dated && DATE_FIELD.test(s)) dated = true;
    else if (TO_OR_SUBJECT_FIELD.test(s)) addressed = true;
    if (from && dated && addressed) return true;
  }
  return false;
}

/**
 * Sign-offs that mobile and desktop apps append ("Sent from my iPhone",
 * "Get Outlook for Android"), in the languages we support. Only ever
 * removed as the last line of the new text.
 */
const SIGN_OFFS: readonly RegExp[] = [
  /^Sent (?:from|with|via|using) \S.{0,80}$/i,
  /^Get Outlook for (?:iOS|Android|Mac|Windows)\b.{0,80}$/i,
  /^Von meine[mr]? \S.{0,60} gesendet\.?$/i,
  /^Gesendet (?:von|mit|vom) \S.{0,80}$/i,
  /^Outlook für (?:iOS|Android) herunterladen.{0,80}$/i,
  /^Envoyé (?:de|depuis|à partir de|avec) \S.{0,80}$/i,
  /^(?:Télécharger|Obtenir) Outlook pour (?:iOS|Android).{0,80}$/i,
  /^Enviado (?:desde|con|do|da|a partir do|de) \S.{0,80}$/i,
  /^(?:Obtener|Obter o|Obter) Outlook (?:para|for) (?:iOS|Android).{0,80}$/i,
  /^(?:Verzonden|Verstuurd) (?:vanaf|met|vanuit|van) \S.{0,80}$/i,
  /^(?:Outlook voor (?:iOS|Android) downloaden|Download Outlook voor (?:iOS|Android)).{0,80}$/i,
  /^Inviato da(?:l mio)? \S.{0,80}$/i,
  /^Scarica Outlook per (?:iOS|Android).{0,80}$/i,
  /^(?:Skickat från|Sendt fra|Wysłane z) \S.{0,80}$/i,
  /^.{1,40}から送信$/,
  /^(?:iOS|Android)\s?版\s?Outlook.{0,40}$/,
  /^(?:发自|發自|来自)我的.{1,40}$/,
  /^從我的.{1,40}傳送$/,
  /^获取\s?(?:iOS|Android)\s?版\s?Outlook.{0,40}$/,
  /^.{1,40}에서 보냄$/,
];

export function isSignOff(s: string): boolean {
  if (s.length > 200) return false;
  for (const re of SIGN_OFFS) if (re.test(s)) return true;
  return false;
}

/** RFC 3676 §4.3 "-- " delimiter; many clients and gateways strip its blank. */
export function isSignatureDelimiter(line: string): boolean {
  return line === '-- ' || line === '--' || line === '-- \u00a0' || line === '--\u00a0';
}

/** A rule above a header block: OWA's underscores, Outlook 2003's dashes. */
export function isRule(s: string): boolean {
  return s.length >= 5 && s.length <= 200 && /^(?:_{5,}|-{5,}|={5,})$/.test(s);
}

/** The text of a quoted line without its ">" marks (any depth). */
export function unquote(s: string): string {
  let i = 0;
  while (i < s.length && (s.charCodeAt(i) === 0x3e /* > */ || s.charCodeAt(i) === 0x20)) i++;
  return s.slice(i);
}

/** A quoted line: ">" with at most three blanks before it. */
export function isQuoted(line: string): boolean {
  return /^[ \t]{0,3}>/.test(line);
}
