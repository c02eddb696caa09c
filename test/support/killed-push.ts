import { runCli } from './fixtures.js';
import type { LocalHub } from './hub-server.js';

/**
 * Runs `rlaif-v <args>` against `hub` and SIGKILLs it at its first upload: the first request matching `stallOn` goes
 * through, the next ones hang until the kill, so the push stops after exactly that much. The hub's faults and upload
 * hooks are cleared after. Resolves with how the killed run ended.
 */
export async function pushKilledAfterFirstUpload(hub: LocalHub, stallOn: RegExp, args: string[], env: NodeJS.ProcessEnv): ReturnType<typeof runCli> {
  let killed = false;
  let release = (): void => undefined;
  hub.fail({ match: stallOn, kind: 'stall', until: new Promise<void>((resolve) => (release = resolve)), skip: 1, times: 1000 });
  const result = await runCli(args, {
    env,
    onSpawn: (child) => {
      hub.onUpload.push(() => {
        if (!killed) child.kill('SIGKILL');
        killed = true;
      });
    },
  });
  hub.onUpload.length = 0;
  hub.clearFaults();
  release();
  return result;
}
