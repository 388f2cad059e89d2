// What an issue tracker makes of one mailgate `message.received` payload.
// Pure functions: no I/O, so a pipeline can copy them and test them alone.

/**
 * Reply and forward prefixes clients put before a subject, in the languages
 * mail clients ship: Re, AW (Antwort), SV (svar), VS (vastaus), Antw, Odp,
 * Ynt, RES, RIF, R, Fw, Fwd, WG (weitergeleitet), TR (transféré), RV
 * (reenviado), Enc (encaminhado), VB, VL, Doorst, ΑΠ, ΣΧΕΤ, Отв, 回复,
 * 回覆, 答复, 转发, 轉寄; with counters like "Re[2]:" or "Re^3:", repeated
 * ("Re: AW: Fwd: …"), a colon or a full-width colon after each.
 */
const PREFIX =
  /^\s*(?:re|aw|sv|vs|antw|antwort|odp|ynt|res|rif|r|fw|fwd|wg|tr|rv|enc|vb|vl|doorst|απ|σχετ|отв|ответ|回复|回覆|答复|转发|轉寄)\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]\s*/iu;

/** The issue title for a subject: without its reply and forward prefixes. */
export function titleOf(subject) {
  let s = typeof subject === 'string' ? subject : '';
  // Bounded: at most 20 prefixes are taken off.
  for (let i = 0; i < 20; i++) {
    const m = PREFIX.exec(s);
    if (!m) break;
    s = s.slice(m[0].length);
  }
  s = s.trim();
  return s === '' ? '(no subject)' : s;
}

/**
 * What the tracker does with a delivery:
 * - `skip` automatic mail (`autoType` is not null): out-of-office replies,
 *   bounces, bulk. Never create an issue for it and never answer it (mail
 *   loops). A bounce says which of your messages did not arrive
 *   (`bounce.originalMessageId`) and to whom.
 * - `comment` on the issue named in the subject (`issueKeys`), or on the
 *   issue already opened for this thread (`conversationId`); the comment
 *   body is `replyText`, what the sender wrote without the quoted history.
 * - `create` an issue otherwise: title from the subject, description
 *   `replyText`, and remember the thread for the replies to come.
 *
 * `threads` maps a conversationId to the issue opened for it (a pipeline
 * keeps this in its database). `newIssueKey()` names a new issue.
 */
export function trackerActionOf(payload, threads, newIssueKey) {
  if (payload?.event !== 'message.received') return { action: 'ignore', reason: `event ${String(payload?.event)}` };
  const thread = typeof payload.conversationId === 'string' ? payload.conversationId : null;
  const from = payload.from?.address ?? null;
  if (payload.autoType) {
    return { action: 'skip', reason: payload.autoType, bounce: payload.bounce ?? null, thread, from, subject: payload.subject ?? '' };
  }
  // Until a mailgate without replyText: the whole text.
  const body = typeof payload.replyText === 'string' ? payload.replyText : (payload.text ?? '');
  const named = Array.isArray(payload.issueKeys) && typeof payload.issueKeys[0] === 'string' ? payload.issueKeys[0] : null;
  const known = thread !== null ? (threads.get(thread) ?? null) : null;
  const issue = named ?? known;
  if (issue !== null) {
    if (thread !== null && !threads.has(thread)) threads.set(thread, issue);
    return { action: 'comment', issue, body, thread, from };
  }
  const created = newIssueKey();
  if (thread !== null) threads.set(thread, created);
  return { action: 'create', issue: created, title: titleOf(payload.subject), body, thread, from };
}
