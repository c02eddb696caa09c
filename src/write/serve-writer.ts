/**
 * The writer thread's work: it owns the parquet shards of every split, so that writing (encoding, and the copy of every
 * image into its file) costs the main thread nothing. It receives rows with their image buffers transferred, in
 * order, and answers each message in turn (see writer-thread.ts, the main thread's end, and protocol.ts, the messages).
 */
import type { MessagePort } from 'node:worker_threads';
import { RlaifError } from '../errors.js';
import { imageBufferBytes } from '../output/to-conversational.js';
import { osThreadId, threadCpuSeconds } from '../util/measure-cpu.js';
import type { WriterReply, WriterRequest, WriterSetup, WritersState } from './protocol.js';
import { SplitWriter } from './split-writer.js';

/** Serves the writer thread's requests from `port`, with the splits' writers `setup` describes. */
export function serveWriter(port: MessagePort, setup: WriterSetup): void {
  const writers = new Map(Object.entries(setup.splits).map(([name, options]) => [name, new SplitWriter(options)]));
  const reply = (message: WriterReply): void => port.postMessage(message);
  const writerOf = (split: string): SplitWriter => {
    const writer = writers.get(split);
    if (writer === undefined) throw new Error(`no split ${split}`);
    return writer;
  };

  const handle = async (request: WriterRequest): Promise<void> => {
    if (request.type === 'append') {
      for (const [split, part] of Object.entries(request.parts)) await writerOf(split).append(part);
      let held = 0;
      for (const writer of writers.values()) held += imageBufferBytes(writer.pendingRows);
      reply({ type: 'appended', held });
    } else if (request.type === 'checkpoint') {
      const splits: WritersState = {};
      for (const [name, writer] of writers) splits[name] = writer.state();
      reply({ type: 'checkpoint', splits });
    } else if (request.type === 'cut') {
      await cutSplit(writerOf(request.split), request.split, reply);
    } else {
      for (const writer of writers.values()) await writer.abort().catch(() => undefined);
      reply({ type: 'aborted' });
    }
  };

  // Requests are handled one after another, in the order they came: the rows of a split must be written in order.
  // A run taking up a dead one's files starts from where they stand.
  let queue = (async () => {
    for (const [name, state] of Object.entries(setup.resume ?? {})) await writerOf(name).resume(state);
  })().catch((error: unknown) => {
    reply({ type: 'failed', code: 'ERR_RESUME', message: `Could not take up the files of the interrupted run: ${error instanceof Error ? error.message : String(error)}` });
  });
  port.on('message', (request: WriterRequest) => {
    queue = queue
      .then(() => handle(request))
      .catch((error: unknown) => {
        const code = error instanceof RlaifError ? error.code : 'ERR_PARQUET_WRITE';
        reply({ type: 'failed', code, message: error instanceof Error ? error.message : String(error) });
      });
  });
}

/** Cuts a split's last shards, telling the rows rewritten as it goes, then what it wrote and the thread's CPU so far. */
async function cutSplit(writer: SplitWriter, split: string, reply: (message: WriterReply) => void): Promise<void> {
  const finishing = writer.cut();
  for (;;) {
    const step = await finishing.next();
    if (step.done === true) {
      const id = osThreadId();
      const cpu = threadCpuSeconds();
      reply({ type: 'finished', split, result: step.value, thread: id === null || cpu === null ? null : { id, cpu } });
      return;
    }
    reply({ type: 'rewritten', split, rows: step.value });
  }
}
