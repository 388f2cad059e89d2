// A plain node process that starts the harness's OAuth2 server the way tests
// do (startOAuthServer() in test/harness/oauth-process.ts, loaded through
// Vite's module runner as node 20 runs no TypeScript), prints
// {"serverPid":N,"port":N} and waits. oauth-orphan.test.ts SIGKILLs it.
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';

const harness = fileURLToPath(new URL('../../harness/oauth-process.ts', import.meta.url));
const { module } = await runnerImport(harness, { configFile: false, logLevel: 'silent' });
const server = await module.startOAuthServer();
process.stdout.write(JSON.stringify({ serverPid: server.pid, port: server.port }) + '\n');
// Stay until killed, or until the test that started us is gone (stdin EOF).
process.stdin.once('end', () => process.exit(0));
process.stdin.resume();
