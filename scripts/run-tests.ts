/**
 * `npm test`: runs every `*.test.js` under dist/test/, one file at a time, and nothing else. Node 20's `node --test
 * <dir>` also runs every other module of a folder named test (the local Hub, the fixtures), counting each as a passing
 * test, and takes no glob; so the files are listed here. Arguments are passed on to `node --test` before the files
 * (e.g. `npm test -- --test-name-pattern=verify`).
 *
 * Usage: node dist/scripts/run-tests.js [node --test options]   (from the repository root, after the build)
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = path.join(dir, name);
      return statSync(full).isDirectory() ? testFiles(full) : name.endsWith('.test.js') ? [full] : [];
    });
}

const files = testFiles(path.join('dist', 'test'));
if (files.length === 0) {
  process.stderr.write('run-tests: no dist/test/**/*.test.js: run `npm run build` first\n');
  process.exit(1);
}
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...process.argv.slice(2), ...files], { stdio: 'inherit' });
child.on('exit', (code, signal) => {
  if (signal !== null) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
