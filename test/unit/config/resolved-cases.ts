/**
 * Inputs for the resolved-config snapshot (resolved.test.ts): the shipped
 * configs, one config per feature, and one per kind of mistake. Each case is
 * written to a fresh temp dir with its files; the snapshot holds what
 * loadConfig made of it (config, warnings or errors).
 */
export interface ResolvedCase {
  name: string;
  yaml: string;
  files?: Record<string, string>;
  env?: Record<string, string>;
  /** Credentials the database of dataDir holds; unset: no database lookup. */
  databaseCredentials?: string[];
}

const TOKEN = 't'.repeat(24);
const hook = `webhooks:
  - { name: h, url: https://hooks.example.com/x, secret: s }
`;

export const VALID_CASES: ResolvedCase[] = [
  { name: 'empty-file', yaml: '' },
  { name: 'empty-mapping', yaml: '{}\n' },
  {
    name: 'units',
    yaml: `retention: { messages: 36, outbox: 1.5h }
tokens: { refreshBefore: " 2 M ", refreshConcurrency: 3 }
webhooks:
  - name: a
    url: http://127.0.0.1:9/x
    secret: s
    maxAttempts: 1
    backoff: { initial: 250ms }
    timeout: 0.5s
    maxInlineAttachmentBytes: 2048
    concurrency: 1
  - name: b
    url: http://localhost/x
    secret: s
    backoff: { max: 2d }
    timeout: 0
    maxInlineAttachmentBytes: 1.5MB
  - name: c
    url: https://c.example.com/
    secret: s
    backoff: {}
    maxInlineAttachmentBytes: 512KiB
  - { name: d, url: https://d.example.com, secret: s, maxInlineAttachmentBytes: 1gb }
`,
  },
  {
    name: 'server',
    yaml: `server:
  listen: "[::1]:9000"
  publicUrl: https://mg.example.com/base///
  adminTokenFile: ./admin.token
  metricsTokenFile: ./metrics.token
  allowedHosts: [mg.internal, "mg.internal:8443", "[::1]:9000"]
  trustProxy: [127.0.0.1, 10.0.0.0/8]
logLevel: debug
dataDir: /var/lib/mailgate
`,
    files: { 'admin.token': `${TOKEN}\n`, 'metrics.token': `${'m'.repeat(30)}\r\n` },
  },
  { name: 'server-listen-any', yaml: `server:\n  listen: 0.0.0.0:8080\n  adminToken: ${TOKEN}\n  metricsToken: ${'x'.repeat(40)}\ndataDir: state/\n` },
  { name: 'server-listen-name', yaml: 'server: { listen: "localhost:0" }\n' },
  {
    name: 'accounts-tls',
    yaml: `accounts:
  - name: imap-plain-remote
    email: a@example.com
    incoming: { protocol: imap, host: imap.example.com, tls: false, auth: { method: password, password: p } }
    webhook: h
  - name: imap-plain-loopback
    email: b@example.com
    incoming: { protocol: imap, host: 127.0.0.1, tls: false, port: 1143, user: bob, auth: { method: oauthbearer, credential: c } }
    outgoing: { host: localhost, tls: false, auth: { method: password, passwordFile: ./pw } }
    webhook: h
  - name: imap-cleartext
    email: c@example.com
    incoming: { protocol: imap, host: imap.example.com, tls: false, requireTLS: false, auth: { method: xoauth2, credential: c } }
    outgoing: { host: smtp.example.com, tls: false, requireTLS: false, user: sender, from: other@example.com, auth: { method: password, password: p } }
    webhook: h
  - name: imap-tls-norequire
    email: d@example.com
    incoming:
      protocol: imap
      host: "[::1]"
      requireTLS: false
      mailboxes: [INBOX, Support/Urgent]
      mode: poll
      pollInterval: 10s
      idleResync: 1h
      afterDelivery: none
      auth: { method: xoauth2, credential: c }
    outgoing: { host: smtp.example.com, port: 2525, requireTLS: true, auth: { method: xoauth2, credential: c } }
    webhook: h
  - name: pop3-tls
    email: e@example.com
    incoming: { protocol: pop3, host: pop.example.com, auth: { method: xoauth2, credential: c }, afterDelivery: seen, pollInterval: 5m }
    webhook: h
  - name: pop3-cleartext
    email: f@example.com
    incoming: { protocol: pop3, host: pop.example.com, tls: false, requireTLS: false, port: 1110, auth: { method: password, password: p }, afterDelivery: none }
    webhook: h
  - name: pop3-idle-resync
    email: g@example.com
    incoming: { protocol: pop3, host: localhost, tls: false, idleResync: 2m, auth: { method: password, password: p } }
    webhook: h
  - name: imap-move
    email: h@example.com
    incoming: { protocol: imap, host: imap.example.com, mode: idle, afterDelivery: move, moveTo: Archive/Done, auth: { method: xoauth2, credential: c } }
    webhook: h
credentials:
  - { name: c, provider: google, clientId: id, clientSecret: s }
${hook}`,
    files: { pw: 'secret\n\n' },
  },
  {
    name: 'credentials',
    yaml: `credentials:
  - { name: ms, provider: microsoft, clientId: a, tenant: contoso.example, clientSecret: "" }
  - { name: gcc, provider: microsoft-gcc-high, clientId: b }
  - name: app
    provider: custom
    grant: client_credentials
    clientId: c
    clientSecretFile: ./cs
    tokenEndpoint: http://idp.example.com/token
    deviceAuthorizationEndpoint: http://127.0.0.1:9/device
    scopes: [x]
  - name: g
    provider: google
    clientId: d
    scopes: [a, b]
    authorizationEndpoint: http://idp.example.com/auth
  - { name: code, provider: custom, clientId: e, authorizationEndpoint: https://i.example/a, tokenEndpoint: https://i.example/t, scopes: [s] }
`,
    files: { cs: 'client-secret' },
  },
  {
    name: 'database-credential',
    yaml: `accounts:
  - name: a
    email: a@example.com
    incoming: { protocol: imap, host: imap.example.com, auth: { method: xoauth2, credential: from-db } }
    outgoing: { host: smtp.example.com, auth: { method: oauthbearer, credential: from-db } }
    webhook: h
${hook}`,
    databaseCredentials: ['from-db'],
  },
  {
    name: 'env-and-anchors',
    yaml: `accounts:
  - { name: a, email: a@example.com, incoming: &in { protocol: imap, host: "\${HOST}", auth: { method: password, password: "$\${literal}\${PW}" } }, webhook: h }
  - { name: b, email: b@example.com, incoming: *in, webhook: h }
${hook}`,
    env: { HOST: 'imap.example.com', PW: 'pw' },
  },
];

export const ERROR_CASES: ResolvedCase[] = [
  {
    name: 'references-and-combinations',
    yaml: `credentials:
  - { name: c, provider: custom, clientId: x }
  - { name: c, provider: google, clientId: y, tenant: t }
  - { name: cc, provider: custom, clientId: z, grant: client_credentials }
accounts:
  - name: a
    email: a@example.com
    incoming:
      protocol: pop3
      host: h
      mode: idle
      auth: { method: xoauth2, credential: nope }
      afterDelivery: move
    webhook: missing
  - name: a
    email: b@example.com
    incoming: { protocol: pop3, host: h, mode: poll, mailboxes: [INBOX], moveTo: X, auth: { method: password, password: p } }
    webhook: h
  - name: b
    email: b@example.com
    incoming: { protocol: pop3, host: h, afterDelivery: move, moveTo: X, auth: { method: password, password: p } }
    webhook: h
  - name: c
    email: c@example.com
    incoming: { protocol: imap, host: h, moveTo: X, auth: { method: password, credential: c } }
    outgoing: { host: s, auth: { method: xoauth2, password: p } }
    webhook: h
  - name: d
    email: d@example.com
    incoming: { protocol: imap, host: h, afterDelivery: move, auth: { method: oauthbearer } }
    outgoing: { host: s, auth: { method: password } }
    webhook: h
webhooks:
  - { name: h, url: https://x.example/h, secret: s, backoff: { initial: 2h } }
  - { name: h, url: https://x.example/h }
`,
  },
  {
    name: 'units-invalid',
    yaml: `retention: { messages: 5 minutes, outbox: true }
tokens: { refreshBefore: -1, refreshConcurrency: 0 }
webhooks:
  - name: a
    url: https://a.example/x
    secret: s
    backoff: { initial: [1], max: { a: 1 } }
    timeout: "10"
    maxInlineAttachmentBytes: ten
  - { name: b, url: https://b.example/x, secret: s, maxInlineAttachmentBytes: 1.5 }
  - { name: c, url: https://c.example/x, secret: s, maxInlineAttachmentBytes: -3, timeout: .nan }
  - { name: d, url: https://d.example/x, secret: s, maxInlineAttachmentBytes: 10 XB, timeout: null }
`,
  },
  {
    name: 'protocol-problems',
    yaml: `accounts:
  - name: a
    email: a@example.com
    incoming: { host: h, auth: { method: password, password: p }, pollIntervall: 5s, port: x }
    webhook: h
  - name: b
    email: b@example.com
    incoming: { protocol: smtp, auth: { method: password, password: p }, tls: yes }
    webhook: h
  - { name: c, email: c@example.com, incoming: { protocol: 5, host: h, auth: { method: password, password: p } }, webhook: h }
  - { name: d, email: d@example.com, incoming: 5, webhook: h }
  - { name: e, email: e@example.com, incoming:, webhook: h }
  - { name: f, email: f@example.com, webhook: h }
  - { name: g, email: g@example.com, incoming: [], webhook: h }
  - { name: i, email: i@example.com, incoming: { protocol: "\${UNSET_PROTOCOL}", host: h, auth: { method: password, password: p }, mode: sometimes }, webhook: h }
${hook}`,
  },
  {
    name: 'typos',
    yaml: `acounts: []
server: { listn: "127.0.0.1:1" }
retention: { mesages: 1d }
tokens: { refreshBefor: 1m }
credentials:
  - { name: c, provider: google, clientId: x, clientSecrt: s }
accounts:
  - name: a
    email: a@example.com
    incoming:
      protocol: imap
      host: h
      mailboxs: [INBOX]
      pollIntervall: 5s
      idleResyn: 1m
      moveto: X
      auth: { method: xoauth2, credentail: c }
    outgoing: { host: s, frm: a@example.com, auth: { method: xoauth2, credential: c } }
    webhok: h
  - name: b
    email: b@example.com
    incoming: { protocol: pop3, host: h, afterDelivry: none, auth: { method: password, pasword: p } }
    webhook: h
webhooks:
  - { name: h, url: https://h.example/x, secret: s, backof: { initial: 1s }, backoff: { intial: 1s }, concurency: 2 }
`,
  },
  {
    name: 'wrong-values',
    yaml: `server:
  listen: 8025
  publicUrl: ftp://mg.example.com
  adminToken: short
  allowedHosts: ["a b", "h:1"]
  trustProxy: [""]
logLevel: loud
dataDir: ""
accounts:
  - name: a
    email: nope
    incoming: { protocol: imap, host: "", port: 70000, mailboxes: [], mode: push, afterDelivery: archive, auth: { method: token } }
    outgoing: { host: s, from: bad, port: 0, auth: { method: password, password: p } }
    webhook: h
  - { name: b, email: b@example.com, incoming: { protocol: imap, host: h, mailboxes: INBOX, user: "", auth: { method: password, password: p } }, webhook: "" }
credentials:
  - { name: c, provider: yahoo, clientId: "", scopes: [], tokenEndpoint: "not a url" }
  - { name: "bad name", provider: google, clientId: y, grant: implicit }
webhooks:
  - { name: h, secret: s, maxAttempts: 0, concurrency: 1000 }
`,
  },
  { name: 'listen-bad-text', yaml: 'server:\n  listen: nope\n' },
  { name: 'listen-bad-port', yaml: 'server:\n  listen: "[::1]:99999"\n' },
  { name: 'listen-bad-with-semantic-error', yaml: `server:\n  listen: "host:"\naccounts:\n  - { name: a, email: a@example.com, incoming: { protocol: imap, host: h, auth: { method: password, password: p } }, webhook: missing }\n` },
  {
    name: 'secrets',
    yaml: `server:
  adminTokenFile: ./short.token
  metricsToken: ${TOKEN}
  metricsTokenFile: ./metrics.token
credentials:
  - { name: c, provider: google, clientId: x, clientSecretFile: ./missing }
accounts:
  - name: a
    email: a@example.com
    incoming: { protocol: imap, host: h, auth: { method: password, password: p, passwordFile: ./pw } }
    outgoing: { host: s, auth: { method: password, passwordFile: ./missing } }
    webhook: h
webhooks:
  - { name: h, url: https://h.example/x }
  - { name: i, url: https://h.example/x, secretFile: ./empty }
`,
    files: { 'short.token': 'abc\n', 'metrics.token': `${TOKEN}\n`, pw: 'p', empty: '' },
  },
  {
    name: 'environment',
    yaml: `server:
  adminToken: "\${UNSET_TOKEN}"
  publicUrl: "\${1BAD}"
tokens: { refreshBefore: "\${UNSET_DURATION}" }
webhooks:
  - { name: h, url: "https://\${HOST}/x", secret: "\${}" }
`,
    env: { HOST: 'h.example' },
  },
  {
    name: 'database-credential-missing',
    yaml: `accounts:
  - { name: a, email: a@example.com, incoming: { protocol: imap, host: h, auth: { method: xoauth2, credential: nope } }, webhook: h }
${hook}`,
  },
  { name: 'yaml-duplicate-key', yaml: 'logLevel: info\nlogLevel: debug\n' },
  { name: 'yaml-syntax', yaml: 'server:\n  listen: [1, 2\n' },
  { name: 'top-level-list', yaml: '- a\n- b\n' },
  { name: 'sections-wrong-type', yaml: 'server: []\nretention: 5\ntokens: "x"\ncredentials: {}\naccounts: 3\nwebhooks: [1]\n' },
];
