// Cold start to /readyz and idle RSS of `mailgate serve` on the embedded
// default (fresh dataDir each run), next to a bare node:http server started the
// same way, measured in the same run. Usage: npm run bench:startup [-- runs]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const runs = Number(process.argv[2] ?? 5);
const root = resolve(import.meta.dirname, '..');

function rssKb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

async function waitReady(url, child, deadlineMs = 20_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < deadlineMs) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    await sleep(5);
  }
  throw new Error(`${url} not ready in ${deadlineMs} ms`);
}

async function measure(kind, port) {
  const dir = mkdtempSync(join(tmpdir(), 'mg-bench-start-'));
  let args;
  if (kind === 'mailgate') {
    const cfg = join(dir, 'mailgate.yaml');
    writeFileSync(cfg, `server:\n  listen: 127.0.0.1:${port}\ndataDir: ./data\n`);
    args = [join(root, 'dist/cli.js'), 'serve', '--config', cfg];
  } else {
    args = ['-e', `require('node:http').createServer((q,s)=>s.end('ok')).listen(${port},'127.0.0.1')`];
  }
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH, MAILGATE_LOG_LEVEL: 'warn' } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    await waitReady(`http://127.0.0.1:${port}${kind === 'mailgate' ? '/readyz' : '/'}`, child);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${kind}: ${err.message}\n${stderr}`, { cause: err });
  }
  const readyMs = performance.now() - t0;
  await sleep(3_000); // let it settle, then read idle memory
  const mem = rssKb(child.pid);
  const stopT0 = performance.now();
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.once('exit', (c) => r(c)));
  const stopMs = performance.now() - stopT0;
  rmSync(dir, { recursive: true, force: true });
  return { readyMs, rssMb: mem.rss / 1024, hwmMb: mem.hwm / 1024, stopMs, code };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { mailgate: [], 'bare node:http': [] };
for (let i = 0; i < runs; i++) {
  for (const kind of Object.keys(results)) results[kind].push(await measure(kind, 18900 + i * 2 + (kind === 'mailgate' ? 0 : 1)));
}
console.log(`startup benchmark: ${runs} runs each, node ${process.version}, fresh dataDir per run`);
console.log('kind               ready(ms) med   idle RSS(MiB) med   peak RSS(MiB)   SIGTERM->exit(ms) med   exit codes');
for (const [kind, rs] of Object.entries(results)) {
  console.log(
    `${kind.padEnd(18)} ${median(rs.map((r) => r.readyMs)).toFixed(0).padStart(10)}   ${median(rs.map((r) => r.rssMb)).toFixed(1).padStart(14)}   ${median(rs.map((r) => r.hwmMb)).toFixed(1).padStart(13)}   ${median(rs.map((r) => r.stopMs)).toFixed(0).padStart(21)}   ${rs.map((r) => r.code ?? 'signal').join(',')}`,
  );
}
const m = results.mailgate, b = results['bare node:http'];
console.log(`ratio mailgate/bare: ready ${(median(m.map((r) => r.readyMs)) / median(b.map((r) => r.readyMs))).toFixed(2)}x, idle RSS ${(median(m.map((r) => r.rssMb)) / median(b.map((r) => r.rssMb))).toFixed(2)}x`);
if (m.some((r) => r.code !== 0)) process.exitCode = 1;
