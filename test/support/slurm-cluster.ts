/**
 * A Slurm cluster of one node for the tests: munged, slurmctld and slurmd started as root with every path in a
 * temporary directory (see ../shared/SLURM.md for what it takes on these machines), stopped by the process ids it
 * recorded. `startSlurmCluster` resolves with null, and a reason, where that cannot be done here.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, hostname, totalmem } from 'node:os';
import path from 'node:path';
import { sleep, tempDir } from './fixtures.js';

export interface SlurmCluster {
  /** Environment for clients (`sbatch`, `squeue`, `scontrol`): SLURM_CONF. */
  env: NodeJS.ProcessEnv;
  /** Waits until the job is over; resolves with its JobState (COMPLETED, FAILED, CANCELLED...). */
  waitForJob(id: string, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

function which(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { env }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }));
  });
}

/** Why a cluster cannot be started here, or null when it can. */
export function slurmUnavailable(): string | null {
  if (process.platform !== 'linux') return 'Slurm runs on Linux only';
  if (process.getuid?.() !== 0) return 'starting slurmd and munged needs root';
  for (const command of ['munged', 'mungekey', 'slurmctld', 'slurmd', 'sbatch', 'scontrol', 'sinfo']) {
    if (!which(command)) return `${command} is not installed (apt-get install slurm-wlm munge; .ci/run does)`;
  }
  return null;
}

/** Starts the cluster, or resolves with the reason it cannot. */
export async function startSlurmCluster(): Promise<SlurmCluster | { unavailable: string }> {
  const reason = slurmUnavailable();
  if (reason !== null) return { unavailable: reason };
  const dir = await tempDir('rlaif-v-slurm-');
  const munge = path.join(dir, 'munge');
  await mkdir(munge);
  // The socket's directory must be world-executable, or clients cannot reach it.
  await chmod(munge, 0o755);
  const key = path.join(munge, 'munge.key');
  const socket = path.join(munge, 'munge.socket.2');
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    const env = { ...process.env, SLURM_CONF: path.join(dir, 'slurm.conf') };
    await run('scontrol', ['shutdown'], env).catch(() => undefined);
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await sleep(500);
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    const munged = Number((await readFile(path.join(munge, 'munged.pid'), 'utf8').catch(() => '')).trim());
    if (munged > 0) {
      try {
        process.kill(munged, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  };
  try {
    const made = await run('mungekey', ['--create', `--keyfile=${key}`], process.env);
    if (made.code !== 0) return { unavailable: `mungekey failed: ${made.stderr.trim()}` };
    await chmod(key, 0o600);
    const started = await run(
      'munged',
      [`--key-file=${key}`, `--socket=${socket}`, `--pid-file=${path.join(munge, 'munged.pid')}`, `--seed-file=${path.join(munge, 'seed')}`, `--log-file=${path.join(munge, 'munged.log')}`, '--force'],
      process.env,
    );
    if (started.code !== 0) return { unavailable: `munged did not start: ${started.stderr.trim()}` };
    const host = hostname().split('.')[0] ?? 'localhost';
    // Ports of their own, so that another cluster on the machine is no trouble.
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const memory = Math.max(1024, Math.floor(totalmem() / 2 ** 20) - 1024);
    const conf = path.join(dir, 'slurm.conf');
    await mkdir(path.join(dir, 'state'));
    await mkdir(path.join(dir, 'spool'));
    await writeFile(
      conf,
      [
        'ClusterName=rlaiftest',
        `SlurmctldHost=${host}(127.0.0.1)`,
        `SlurmctldPort=${port}`,
        `SlurmdPort=${port + 1}`,
        'SlurmUser=root',
        'SlurmdUser=root',
        `AuthInfo=socket=${socket}`,
        `StateSaveLocation=${path.join(dir, 'state')}`,
        `SlurmdSpoolDir=${path.join(dir, 'spool')}`,
        `SlurmctldPidFile=${path.join(dir, 'slurmctld.pid')}`,
        `SlurmdPidFile=${path.join(dir, 'slurmd.pid')}`,
        `SlurmctldLogFile=${path.join(dir, 'slurmctld.log')}`,
        `SlurmdLogFile=${path.join(dir, 'slurmd.log')}`,
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'JobAcctGatherType=jobacct_gather/none',
        'AccountingStorageType=accounting_storage/none',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_Core',
        'ReturnToService=2',
        'SchedulerParameters=batch_sched_delay=0,sched_interval=1,bf_interval=1',
        'DependencyParameters=kill_invalid_depend',
        'MinJobAge=3600',
        `NodeName=${host} NodeAddr=127.0.0.1 CPUs=${availableParallelism()} RealMemory=${memory} State=UNKNOWN`,
        `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
        '',
      ].join('\n'),
    );
    const env = { ...process.env, SLURM_CONF: conf };
    for (const daemon of ['slurmctld', 'slurmd']) {
      const child = spawn(daemon, ['-D', '-f', conf], { env, stdio: 'ignore', detached: true });
      child.on('error', () => undefined);
      children.push(child);
    }
    for (let waited = 0; ; waited += 500) {
      const state = await run('sinfo', ['-h', '-o', '%T'], env);
      if (state.stdout.trim() === 'idle') break;
      if (waited > 30_000) {
        const log = await readFile(path.join(dir, 'slurmctld.log'), 'utf8').catch(() => '');
        await stop();
        return { unavailable: `the node did not become idle in 30 s (sinfo: ${state.stdout.trim() || state.stderr.trim()}; ${log.split('\n').slice(-3).join(' / ')})` };
      }
      await sleep(500);
    }
    return {
      env,
      stop,
      async waitForJob(id: string, timeoutMs = 300_000): Promise<string> {
        for (let waited = 0; waited < timeoutMs; waited += 500) {
          const shown = await run('scontrol', ['show', 'job', id], env);
          // An array job shows a line per task: it is over when none is pending or running.
          const states = [...shown.stdout.matchAll(/JobState=(\w+)/g)].map((match) => match[1] ?? '');
          if (states.length > 0 && states.every((state) => !['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING'].includes(state))) {
            return states.find((state) => state !== 'COMPLETED') ?? 'COMPLETED';
          }
          await sleep(500);
        }
        throw new Error(`job ${id} did not end in ${timeoutMs / 1000} s`);
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
