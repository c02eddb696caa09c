import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { slurmScripts, type SubmittedJobs } from '../src/cli/slurm-job.js';
import { writeSourceFile } from '../src/source/source-rows-to-arrow.js';
import { goodRows } from '../scripts/bad-corpus.js';
import { assertSameFiles, filesOf, runCli, sampleDir, tempDir } from './fixtures.js';
import { startSlurmCluster, type SlurmCluster } from './slurm-cluster.js';

describe('rlaif-v slurm, on a Slurm cluster of one node', () => {
  let cluster: SlurmCluster | null = null;
  let unavailable = '';
  let input: string;
  let dir: string;
  const options = ['--test-size', '0.2', '--max-shard-size', '300KB', '--max-reject-fraction', '1', '--checkpoint-every', '96KB'];

  before(async () => {
    const started = await startSlurmCluster();
    if ('unavailable' in started) {
      unavailable = `skipped: no Slurm cluster can be started here (${started.unavailable})`;
      process.stderr.write(`${unavailable}\n`);
    } else cluster = started;
    input = await sampleDir(500, { files: 2, rowGroupSize: 125 });
    // A last file with a broken image, so that a part can be made to fail (--on-bad-image fail).
    const rows = await goodRows(30);
    const broken = rows[17];
    if (broken !== undefined) broken.image = { bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]), path: 'broken.jpg' };
    await writeSourceFile(path.join(input, 'z-extra.parquet'), rows, 10);
    dir = await tempDir();
  });

  after(async () => {
    await cluster?.stop();
  });

  /** Submits `slurm` with `args` and waits for both jobs; resolves with their ids and end states. */
  async function submit(args: string[]): Promise<{ jobs: SubmittedJobs; array: string; finalize: string; stderr: string }> {
    if (cluster === null) throw new Error('no cluster');
    const submitted = await runCli(['slurm', '--json', ...args], { env: cluster.env });
    assert.equal(submitted.code, 0, submitted.stderr);
    const jobs = JSON.parse(submitted.stdout) as SubmittedJobs;
    const array = await cluster.waitForJob(jobs.arrayJob);
    const finalize = await cluster.waitForJob(jobs.finalizeJob);
    return { jobs, array, finalize, stderr: submitted.stderr };
  }

  function skipped(t: TestContext): boolean {
    if (cluster !== null) return false;
    t.skip(unavailable);
    return true;
  }

  it('runs a 3-task array job and finalize after it, writing the bytes of a one-machine run', async (t) => {
    if (skipped(t)) return;
    const reference = path.join(dir, 'one');
    assert.equal((await runCli(['convert', '-i', input, '-o', reference, ...options, '--quiet'])).code, 0);
    const output = path.join(dir, 'cluster');
    const { jobs, array, finalize } = await submit(['-i', input, '-o', output, '--tasks', '3', '--cpus-per-task', '1', '--time', '10:00', ...options]);
    assert.equal(array, 'COMPLETED');
    assert.equal(finalize, 'COMPLETED', await readFile(jobs.logs.finalize, 'utf8').catch(() => 'no log'));
    assertSameFiles(await filesOf(output), await filesOf(reference), 'the cluster run');
    assert.ok(!existsSync(`${output}.partial`), 'the parts are gone');
    for (const task of [0, 1, 2]) {
      assert.match(await readFile(path.join(`${output}.slurm`, `part-${task}.log`), 'utf8'), new RegExp(`Part ${task} of 3 done`));
    }
    assert.match(await readFile(jobs.logs.finalize, 'utf8'), /Put together from 3 part\(s\)/);
  });

  it('cancels finalize when a part fails; submitted again, it keeps the finished parts and finishes', async (t) => {
    if (skipped(t)) return;
    const reference = path.join(dir, 'one-skip');
    assert.equal((await runCli(['convert', '-i', input, '-o', reference, ...options, '--quiet'])).code, 0);
    const output = path.join(dir, 'failing');
    const args = ['-i', input, '-o', output, '--tasks', '3', '--cpus-per-task', '1', ...options];
    const first = await submit([...args, '--on-bad-image', 'fail']);
    assert.equal(first.array, 'FAILED');
    assert.equal(first.finalize, 'CANCELLED');
    assert.ok(!existsSync(output));
    assert.match(await readFile(path.join(`${output}.slurm`, 'part-2.log'), 'utf8'), /Row 517 \(idx "17"\) has a bad image: unsupported_image/);
    const again = await submit([...args, '--on-bad-image', 'skip']);
    assert.equal(again.array, 'COMPLETED');
    assert.equal(again.finalize, 'COMPLETED');
    for (const task of [0, 1]) assert.match(await readFile(path.join(`${output}.slurm`, `part-${task}.log`), 'utf8'), /finished by an earlier run/);
    assertSameFiles(await filesOf(output), await filesOf(reference), 'submitted again');
  });

  it('prints the batch scripts with --dry-run, and submits nothing', async () => {
    const output = path.join(dir, 'dry');
    const result = await runCli(['slurm', '-i', input, '-o', output, '--tasks', '4', '--partition', 'gpu', '--time', '2:00:00', '--sbatch-arg=--mem=16G', '--push-to-hub', '--repo-id', 'me/x', '--dry-run']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /#SBATCH --array=0-3\n/);
    assert.match(result.stdout, /#SBATCH --partition=gpu\n#SBATCH --time=2:00:00\n#SBATCH --mem=16G\n/);
    assert.match(result.stdout, new RegExp(`#SBATCH --output=${output}\\.slurm/part-%a\\.log`));
    assert.match(result.stdout, / convert -i \S+ -o \S+dry --num-shards 4 --shard-index "\$SLURM_ARRAY_TASK_ID"\n/, 'the parts get the convert options, not the push');
    assert.match(result.stdout, / finalize \S+dry --push-to-hub --repo-id me\/x\n/);
    assert.match(result.stdout, /--dependency=afterok:<its job id> --kill-on-invalid-dep=yes/);
    assert.ok(!existsSync(`${output}.slurm`), 'nothing written');
    // Options before the command word, and `true`/`false` after a flag of slurm's own, stay out of the parts' command.
    const odd = await runCli(['-i', input, 'slurm', '-o', output, '--tasks', '2', '--private', 'false', '--json', 'false', '--num-proc', '64', '--dry-run']);
    assert.equal(odd.code, 0, odd.stderr);
    assert.match(odd.stdout, new RegExp(` convert -i ${input.replace(/[/.]/g, '\\$&')} -o \\S+dry --num-proc 64 --num-shards 2 --shard-index`));
    assert.doesNotMatch(odd.stdout, /false/);
    const token = await runCli(['slurm', '-i', input, '-o', output, '--tasks', '2', '--token', 'hf_x', '--dry-run']);
    assert.equal(token.code, 2);
    assert.match(token.stderr, /--token would be written into the batch scripts/);
    // A newline in any value would end a #SBATCH line or a comment, and what follows would run on the node.
    const base = ['slurm', '-i', input, '--tasks', '2', '--dry-run'];
    for (const args of [
      ['-o', `${output}\ntouch /tmp/rlaif-v-injected`],
      ['-o', output, '--sbatch-arg=--mem=16G\ntouch /tmp/rlaif-v-injected'],
      ['-o', output, '--partition', 'gpu\rtouch'],
    ]) {
      const injected = await runCli([...base, ...args]);
      assert.equal(injected.code, 2, `${args.join(' ')}: ${injected.stdout}`);
      assert.match(injected.stderr, /holds a control character .* which would end or bend a line of the batch scripts/);
      assert.equal(injected.stdout, '');
    }
    const scripts = slurmScripts({ command: ['node', 'bin.js'], convertArgs: [], finalizeArgs: [], output: '/data/OUTPUT-NAME', tasks: 2, logDir: '/data/logs', workDir: '/data', sbatchArgs: [] });
    for (const script of [scripts.convert, scripts.finalize]) {
      assert.deepEqual(script.split('\n').filter((line) => line.startsWith('# ') && line.includes('OUTPUT-NAME')), [], 'no value in a comment');
    }
  });
});
