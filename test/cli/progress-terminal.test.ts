/** The progress line as a terminal shows it: the CLI run in a pseudo-terminal of a given width (Python's pty module). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { CLI, sampleDir, tempDir } from '../support/fixtures.js';

/** Runs a command in a pseudo-terminal of `columns` columns and returns all it wrote. */
const PTY_RUN = `
import fcntl, os, pty, struct, subprocess, sys, termios
columns = int(sys.argv[1])
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, columns, 0, 0))
child = subprocess.Popen(sys.argv[2:], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
os.close(slave)
out = b''
while True:
    try:
        data = os.read(master, 65536)
    except OSError:
        break
    if not data:
        break
    out += data
child.wait()
sys.stdout.buffer.write(out)
sys.exit(child.returncode)
`;

const python = spawnSync('python3', ['-c', 'import pty, termios, fcntl'], { stdio: 'ignore' }).status === 0;

/** What the terminal's screen holds after `output`: lines wrap at `columns`, \r returns, ESC[2K clears the line. */
function screen(output: string, columns: number): string[] {
  const lines: string[] = [''];
  let column = 0;
  const text = output.replace(/\r\n/g, '\n');
  for (let at = 0; at < text.length; at++) {
    if (text.startsWith('\x1b[2K', at)) {
      lines[lines.length - 1] = '';
      at += 3;
      continue;
    }
    const char = text[at] ?? '';
    if (char === '\r') column = 0;
    else if (char === '\n') {
      lines.push('');
      column = 0;
    } else {
      if (column === columns) {
        lines.push('');
        column = 0;
      }
      const line = lines[lines.length - 1] ?? '';
      lines[lines.length - 1] = line.slice(0, column) + char + line.slice(column + 1);
      column++;
    }
  }
  return lines;
}

describe('the progress line in a terminal', { skip: !python && 'skipped: python3 with its pty module is needed to make a pseudo-terminal' }, () => {
  let input: string;

  before(async () => {
    input = await sampleDir(400, { files: 2 });
  });

  for (const columns of [40, 160]) {
    it(`fits ${columns} columns, and what comes after it starts on a line of its own`, async () => {
      const output = path.join(await tempDir(), 'out');
      const run = spawnSync('python3', ['-c', PTY_RUN, String(columns), process.execPath, CLI, 'convert', '-i', input, '-o', output, '--num-proc', '1', '--no-cache'], {
        encoding: 'utf8',
        env: { ...process.env, COLUMNS: '' },
      });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      const written = run.stdout;
      assert.match(written, /\r\x1b\[2Kconvert /, 'a live line was drawn');
      // Every redraw of the live line is narrower than the terminal, so none wraps and leaves a stale copy.
      for (const piece of written.split('\r\x1b[2K').slice(1)) {
        const drawn = piece.split(/\r?\n/)[0] ?? '';
        if (piece.includes('\n')) continue; // a message written on a cleared line
        assert.ok(drawn.length <= columns - 1, `${JSON.stringify(drawn)} is ${drawn.length} wide in ${columns} columns`);
      }
      const lines = screen(written, columns);
      assert.ok(!lines.some((line) => /ETA/.test(line)), `no progress is left on the screen:\n${lines.join('\n')}`);
      const wrote = lines.findIndex((line) => line.startsWith('Wrote '));
      assert.ok(wrote > 0, `the summary starts a line:\n${lines.join('\n')}`);
      assert.ok(lines.some((line) => line.startsWith('Converting 400 rows from 2 file(s)')));
    });
  }
});
