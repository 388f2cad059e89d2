/** SASL client responses, base64, shared by the POP3 client and the SMTP sender. */

/** Google's XOAUTH2 (developers.google.com/gmail/imap/xoauth2-protocol). */
export function xoauth2Response(user: string, accessToken: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64');
}

/** RFC 7628 §3.1 OAUTHBEARER client response: GS2 header, then kvpairs. */
export function oauthbearerResponse(user: string, accessToken: string): string {
  // RFC 5801 §4 saslname: "," and "=" are escaped as =2C and =3D ("=" first, so escapes survive).
  const saslname = user.replace(/=/g, '=3D').replace(/,/g, '=2C');
  return Buffer.from(`n,a=${saslname},\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64');
}

/** RFC 4616 PLAIN: empty authzid, authcid, password. */
export function plainResponse(user: string, password: string): string {
  return Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
}

/** RFC 7628 §3.2.3: after an error challenge the client answers with a lone ^A. */
export const OAUTHBEARER_ERROR_ACK = Buffer.from('\x01').toString('base64');
