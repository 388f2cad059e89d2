#!/usr/bin/env node
// The first step of `npm test`: the integration tests start a real Dovecot
// (IMAP, POP3, submission), a real PostgreSQL and a real Chromium. When one
// is missing, install it (as root, with apt), or stop at once with the exact
// command to run. `--check` only reports (exit 1 when something is missing).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const PACKAGES = [
  { what: 'Dovecot (IMAP, POP3, submission)', packages: ['dovecot-imapd', 'dovecot-pop3d', 'dovecot-submissiond'], present: () => existsSync('/usr/sbin/dovecot') && dpkgHas('dovecot-pop3d') && dpkgHas('dovecot-submissiond') },
  { what: 'PostgreSQL server', packages: ['postgresql'], present: () => postgresBin() && userExists('postgres') },
  { what: 'Chromium (admin UI browser tests)', packages: ['chromium'], present: () => existsSync('/usr/bin/chromium') },
];

function dpkgHas(pkg) {
  if (!existsSync('/usr/bin/dpkg-query')) return existsSync('/usr/sbin/dovecot');
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function postgresBin() {
  const lib = '/usr/lib/postgresql';
  if (!existsSync(lib)) return false;
  return readdirSync(lib).some((v) => existsSync(`${lib}/${v}/bin/initdb`) && existsSync(`${lib}/${v}/bin/postgres`));
}

function userExists(name) {
  return spawnSync('getent', ['passwd', name]).status === 0;
}

const missing = PACKAGES.filter((p) => !p.present());
if (missing.length === 0) process.exit(0);

const packages = missing.flatMap((p) => p.packages);
const command = `apt-get update && apt-get install -y ${packages.join(' ')}`;
const names = missing.map((p) => p.what).join(', ');
const isRoot = process.getuid?.() === 0;
const hasApt = existsSync('/usr/bin/apt-get');

if (process.argv.includes('--check') || !isRoot || !hasApt) {
  console.error(`npm test needs ${names} for its integration tests, and ${missing.length === 1 ? 'it is' : 'they are'} not installed.`);
  console.error(hasApt ? `Install ${missing.length === 1 ? 'it' : 'them'} with:\n\n  sudo ${command}\n` : `Install the Debian packages ${packages.join(', ')} (or your system's equivalents).`);
  process.exit(1);
}

console.error(`== installing ${names} for the integration tests: ${packages.join(' ')}`);
try {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: ['ignore', 'ignore', 'inherit'], env });
} catch {
  console.error(`could not install ${names}; try by hand: ${command}`);
  process.exit(1);
}
const still = PACKAGES.filter((p) => !p.present());
if (still.length > 0) {
  console.error(`still missing after the install: ${still.map((p) => p.what).join(', ')}`);
  process.exit(1);
}
