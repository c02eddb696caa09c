import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** CPU seconds the calling thread has used, from Linux's /proc/thread-self; null where that is not available. */
export function threadCpuSeconds(): number | null {
  try {
    return statCpuSeconds(readFileSync('/proc/thread-self/stat', 'utf8'));
  } catch {
    return null;
  }
}

/** utime + stime of a /proc `stat` line, in seconds. */
function statCpuSeconds(stat: string): number {
  // Fields after the command name (which may hold spaces, inside parentheses): utime and stime are the 12th and 13th
  // of them, in clock ticks (100 a second on Linux).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds the whole process (every thread) has used. */
export function processCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** The calling thread's id in the kernel (what /proc/<pid>/task lists); null where /proc is not available. */
export function osThreadId(): number | null {
  try {
    const id = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(id) ? id : null;
  } catch {
    return null;
  }
}

/** CPU seconds of every thread of this process, by kernel thread id; empty where /proc is not available. */
export function threadsCpuSeconds(): Map<number, number> {
  const threads = new Map<number, number>();
  let ids: string[];
  try {
    ids = readdirSync('/proc/self/task');
  } catch {
    return threads;
  }
  for (const id of ids) {
    try {
      threads.set(Number(id), statCpuSeconds(readFileSync(`/proc/self/task/${id}/stat`, 'utf8')));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return threads;
}

/** CPU seconds by thread since the process started (see ConvertReport.cpu). */
export interface ThreadsCpu {
  /** Whole process, every thread, since it started (module loading included). */
  process: number;
  main: number;
  workers: number[];
  /** Every other thread together, and the busiest of them. */
  others: number;
  busiestOther: number;
}

/**
 * The process's CPU by thread. Workers have ended by now, so theirs is what their last results said, as is that of
 * any other thread that has ended (`ended`: the writer's); every other thread's is the rest of the process's, and the
 * busiest of them is the busiest of `ended` and of those still alive, read from /proc. Null without /proc.
 */
export function threadsSummary(workerThreads: Map<number, number>, ended: Map<number, number> = new Map()): ThreadsCpu | null {
  const main = osThreadId();
  const threads = threadsCpuSeconds();
  if (main === null || threads.size === 0) return null;
  const round = (value: number): number => Math.round(value * 100) / 100;
  const process = processCpuSeconds();
  const mainCpu = threads.get(main) ?? 0;
  const workers = [...workerThreads.values()];
  for (const [id, cpu] of ended) threads.set(id, Math.max(cpu, threads.get(id) ?? 0));
  let busiestOther = 0;
  for (const [id, cpu] of threads) if (id !== main && !workerThreads.has(id)) busiestOther = Math.max(busiestOther, cpu);
  const others = process - mainCpu - workers.reduce((sum, cpu) => sum + cpu, 0);
  return { process: round(process), main: round(mainCpu), workers: workers.map(round), others: round(others), busiestOther: round(busiestOther) };
}
