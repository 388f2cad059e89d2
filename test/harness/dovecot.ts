import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPorts } from './net.js';
import { dovecotAppOnlyPassdb } from './oauth-process.js';
import { isRunning } from './sweep.js'; // a zombie master (not yet reaped) counts as stopped
import { removeTestTmp } from './tmp.js';

const run = promisify(execFile);

export const DOVECOT_BIN = '/usr/sbin/dovecot';
export const DOVEADM_BIN = '/usr/bin/doveadm';
/** Password accepted for every user by the static passdb (password accounts). */
export const TEST_PASSWORD = 'test-password';
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export interface DovecotOptions {
  /** RFC 7662 endpoint of the test OAuth2 server. */
  introspectionUrl: string;
  /** Where submission relays accepted mail (the SMTP sink). */
  relayPort: number;
  /** Where to make the base dir: the run's temporary root; default os.tmpdir(). */
  parentDir?: string;
  /** Raised limits for many accounts on one instance (bench:accounts); unset, Dovecot's own defaults. */
  scale?: DovecotScale;
  /** `imap_capability`: the capability list after login, e.g. one without NOTIFY (a server that does not offer it). */
  imapCapability?: string;
  /**
   * Also accept app-only (client-credentials) tokens for the mailboxes the
   * app was granted: a second oauth2 passdb in password-grant mode asking
   * this OAuth2 server's /dovecot/passdb, which sees the login name
   * (dovecotAppOnlyPassdb in oauth-process.ts explains why introspection
   * alone cannot). The URL of the test OAuth2 server.
   */
  appOnlyOAuthUrl?: string;
}

/**
 * Dovecot settings for thousands of concurrent IMAP sessions. Every field
 * left out keeps Dovecot 2.3's default, and with no `scale` at all the
 * generated config is what it always was, so other tests are unchanged.
 */
export interface DovecotScale {
  /** `default_client_limit` (Dovecot: 1000): connections one process takes (imap-hibernate, anvil, log, and login processes in performance mode). */
  clientLimit?: number;
  /** `default_process_limit` (Dovecot: 100): processes per service, so at most this many imap sessions that are not hibernated. */
  processLimit?: number;
  /**
   * `service imap-login`: `service_count` (Dovecot: 1, a new login process
   * per connection, "high-security mode"; 0 keeps each process for many,
   * "high-performance mode") and `process_min_avail` (Dovecot: 0, login
   * processes kept waiting).
   */
  login?: { serviceCount?: number; processMinAvail?: number };
  /** `imap_hibernate_timeout` (Dovecot: 0, off), e.g. `5s`: a session in IDLE this long moves to the imap-hibernate process and its imap process ends. */
  imapHibernateTimeout?: string;
  /** `mail_max_userip_connections` (Dovecot: 10): IMAP sessions of one user from one address. */
  maxUserIpConnections?: number;
}

/** The dovecot.conf lines for `scale` (none for what is left out). */
export function scaleConfig(scale: DovecotScale | undefined): string {
  if (!scale) return '';
  const lines: string[] = [];
  if (scale.clientLimit !== undefined) lines.push(`default_client_limit = ${scale.clientLimit}`);
  if (scale.processLimit !== undefined) lines.push(`default_process_limit = ${scale.processLimit}`);
  if (scale.maxUserIpConnections !== undefined) lines.push(`mail_max_userip_connections = ${scale.maxUserIpConnections}`);
  if (scale.imapHibernateTimeout !== undefined) {
    // The imap process (uid dovecot) hands the session to imap-hibernate over
    // its socket, and imap-hibernate hands it back over imap-master when the
    // client sends a command or mail arrives: both must be reachable for it.
    lines.push(
      `imap_hibernate_timeout = ${scale.imapHibernateTimeout}`,
      'service imap {\n  unix_listener imap-master {\n    user = $default_internal_user\n  }\n}',
      'service imap-hibernate {\n  unix_listener imap-hibernate {\n    mode = 0660\n    group = $default_internal_group\n  }\n}',
    );
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

/** The lines inside `service imap-login { }` for `scale`. */
function loginServiceConfig(scale: DovecotScale | undefined): string {
  const l = scale?.login;
  if (!l) return '';
  const lines: string[] = [];
  if (l.serviceCount !== undefined) lines.push(`  service_count = ${l.serviceCount}`);
  if (l.processMinAvail !== undefined) lines.push(`  process_min_avail = ${l.processMinAvail}`);
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

export interface DovecotInfo {
  imapPort: number;
  pop3Port: number;
  submissionPort: number;
  configPath: string;
  baseDir: string;
  mailRoot: string;
  logPath: string;
}

export interface Dovecot extends DovecotInfo {
  /** Stops it and removes its base dir (kept with MAILGATE_KEEP_TEST_TMP=1): it cannot start again. */
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export function dovecotInstalled(): boolean {
  return existsSync(DOVECOT_BIN) && existsSync(DOVEADM_BIN);
}

/**
 * A private Dovecot on loopback high ports (recipe: shared/real-servers.md):
 * IMAP, POP3 and submission with XOAUTH2/OAUTHBEARER checked against the
 * test OAuth2 server's introspection endpoint, and a static password for
 * PLAIN/LOGIN. Penalties for failed logins are off so tests that fail logins
 * on purpose do not slow the others.
 */
export async function startDovecot(opts: DovecotOptions): Promise<Dovecot> {
  if (!dovecotInstalled()) {
    throw new Error(
      'Dovecot is not installed; the integration tests need it: apt-get install -y dovecot-imapd dovecot-pop3d dovecot-submissiond',
    );
  }
  const baseDir = join(opts.parentDir ?? tmpdir(), `mailgate-dovecot-${process.pid}-${Date.now()}`);
  rmSync(baseDir, { recursive: true, force: true }); // a stale anvil socket hangs auth ~5 s
  const runDir = join(baseDir, 'run');
  const stateDir = join(baseDir, 'state');
  const mailRoot = join(baseDir, 'mail');
  for (const d of [baseDir, runDir, stateDir, mailRoot]) mkdirSync(d, { recursive: true });
  chmodSync(baseDir, 0o755);
  await run('chown', ['dovecot:dovecot', mailRoot]); // Dovecot refuses uid 0 for mail
  const [imapPort, pop3Port, submissionPort] = [await freePort(), await freePort(), await freePort()];
  const logPath = join(baseDir, 'dovecot.log');
  const oauthArgs = join(baseDir, 'oauth2.conf');
  writeFileSync(
    oauthArgs,
    [
      `introspection_url = ${opts.introspectionUrl}`,
      'introspection_mode = post',
      'username_attribute = username',
      'active_attribute = active',
      'active_value = true',
      'tokeninfo_url =',
      '',
    ].join('\n'),
  );
  let appOnly = '';
  if (opts.appOnlyOAuthUrl) {
    const argsPath = join(baseDir, 'oauth2-app-only.conf');
    const extra = dovecotAppOnlyPassdb(opts.appOnlyOAuthUrl, argsPath);
    writeFileSync(argsPath, extra.args);
    appOnly = extra.passdb;
  }
  const configPath = join(baseDir, 'dovecot.conf');
  writeFileSync(
    configPath,
    `# generated by mailgate's test harness
base_dir = ${runDir}
state_dir = ${stateDir}
log_path = ${logPath}
info_log_path = ${logPath}
listen = 127.0.0.1
protocols = imap pop3 submission
ssl = no
disable_plaintext_auth = no
auth_mechanisms = xoauth2 oauthbearer plain login
auth_verbose = yes
auth_failure_delay = 0
auth_cache_size = 0
mail_location = maildir:${mailRoot}/%u
first_valid_uid = 1
hostname = mail.test
submission_relay_host = 127.0.0.1
submission_relay_port = ${opts.relayPort}
submission_relay_trusted = yes
pop3_uidl_format = %08Xu%08Xv
${scaleConfig(opts.scale)}${opts.imapCapability ? `imap_capability = ${opts.imapCapability}\n` : ''}passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${oauthArgs}
}
${appOnly}passdb {
  driver = static
  mechanisms = plain login
  args = password=${TEST_PASSWORD}
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=${mailRoot}/%u allow_all_users=yes
}
service imap-login {
${loginServiceConfig(opts.scale)}  inet_listener imap {
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${pop3Port}
  }
  inet_listener pop3s {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    port = ${submissionPort}
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`,
  );
  const ports = [imapPort, pop3Port, submissionPort];

  const start = async () => {
    rmSync(join(runDir, 'anvil-auth-penalty'), { force: true });
    // The master daemonizes and would keep an inherited pipe open: give it a file.
    const out = openSync(join(baseDir, 'master.out'), 'a');
    const child = spawn(DOVECOT_BIN, ['-c', configPath], { stdio: ['ignore', out, out], detached: true });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    closeSync(out);
    if (code !== 0) {
      throw new Error(`dovecot exited with ${code}: ${readFileSync(join(baseDir, 'master.out'), 'utf8')}${tail(logPath)}`);
    }
    await waitForPorts(ports, true, START_TIMEOUT_MS);
    // The master may listen before it writes its pid file; stop() and the
    // sweep of killed runs need the file, so start() waits for it too.
    const pidFile = join(runDir, 'master.pid');
    const deadline = Date.now() + START_TIMEOUT_MS;
    const written = () => existsSync(pidFile) && /^\d+/.test(readFileSync(pidFile, 'utf8'));
    while (!written()) {
      if (Date.now() > deadline) throw new Error(`dovecot listens but wrote no ${pidFile}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const stop = async () => {
    const pidFile = join(runDir, 'master.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : null;
    try {
      await run(DOVEADM_BIN, ['-c', configPath, 'stop'], { timeout: STOP_TIMEOUT_MS });
    } catch {
      if (pid) killQuietly(pid, 'SIGTERM');
    }
    try {
      await waitForPorts(ports, false, STOP_TIMEOUT_MS);
    } catch {
      if (pid) killQuietly(pid, 'SIGKILL');
      await waitForPorts(ports, false, STOP_TIMEOUT_MS);
    }
    // Wait for the master itself so a restart does not race its exit.
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (pid && isRunning(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  };

  await start();
  return {
    imapPort,
    pop3Port,
    submissionPort,
    configPath,
    baseDir,
    mailRoot,
    logPath,
    stop: async () => {
      // Only once stop() has waited for the master: it writes its log until it exits.
      await stop();
      removeTestTmp(baseDir);
    },
    restart: async () => {
      await stop();
      await start();
    },
  };
}

/** Mail dirs of `users` laid out as Dovecot would on first login (owned by dovecot), so thousands of first logins do not all create one. */
export async function createMaildirs(d: Pick<DovecotInfo, 'mailRoot'>, users: string[]): Promise<void> {
  for (const user of users) {
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(d.mailRoot, user, sub), { recursive: true });
  }
  await run('chown', ['-R', 'dovecot:dovecot', d.mailRoot]);
}

export interface DovecotProcesses {
  /** imap processes: one per session that is not hibernated. */
  imap: number;
  /** imap-hibernate processes (each holds many hibernated sessions). */
  hibernate: number;
  /** imap-login processes. */
  login: number;
}

/** Counts the master's imap, imap-hibernate and imap-login children (from /proc). */
export function dovecotProcesses(d: Pick<DovecotInfo, 'baseDir'>): DovecotProcesses {
  const pidFile = join(d.baseDir, 'run', 'master.pid');
  const master = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : '';
  const out: DovecotProcesses = { imap: 0, hibernate: 0, login: 0 };
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (ppid !== master) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (cmd.startsWith('dovecot/imap-hibernate')) out.hibernate++;
      else if (cmd.startsWith('dovecot/imap-login')) out.login++;
      else if (cmd.startsWith('dovecot/imap')) out.imap++;
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export interface DovecotLoginStats {
  /** `imap-login: Login: user=<prefix…>` lines. */
  logins: number;
  /** Most logins in one second of the log's clock. */
  peakPerSecond: number;
  /** Logins over the seconds from the first to the last (inclusive). */
  meanPerSecond: number;
  /** Connections imap-login closed before a login: "no auth attempts", "disconnected before auth was ready". */
  droppedBeforeLogin: number;
  /** ...of them, closed within the second they opened ("in 0 secs", "waited 0 secs"): port probes, not a client that gave up waiting. */
  droppedAtOnce: number;
  spanS: number;
}

/** Reads imap-login's lines of a Dovecot log (its timestamps have one-second resolution). */
export function dovecotLoginStats(log: string, userPrefix: string): DovecotLoginStats {
  const perSecond = new Map<string, number>();
  let logins = 0;
  let dropped = 0;
  let atOnce = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const line of log.split('\n')) {
    if (!line.includes('imap-login: ')) continue;
    if (line.includes('Login: user=<' + userPrefix)) {
      logins++;
      const stamp = line.slice(0, 15); // "Dec 01 22:08:48"
      perSecond.set(stamp, (perSecond.get(stamp) ?? 0) + 1);
      const t = Date.parse(`${stamp.slice(0, 6)} 2000 ${stamp.slice(7)}`) / 1000;
      first = Math.min(first, t);
      last = Math.max(last, t);
    } else if (line.includes('Disconnected') && (line.includes('no auth attempts') || line.includes('before auth was ready'))) {
      dropped++;
      if (/(in|waited) 0 secs/.test(line)) atOnce++;
    }
  }
  const spanS = logins > 0 ? last - first + 1 : 0;
  return { logins, peakPerSecond: Math.max(0, ...perSecond.values()), meanPerSecond: spanS > 0 ? logins / spanS : 0, droppedBeforeLogin: dropped, droppedAtOnce: atOnce, spanS };
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function tail(path: string): string {
  try {
    return '\n' + readFileSync(path, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}
