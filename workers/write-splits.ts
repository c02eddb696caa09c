/**
 * The writer thread: writes the shards of every split, in order. The logic is src/write/serve-writer.ts, the messages
 * src/write/protocol.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { WriterSetup } from '../src/write/protocol.js';
import { serveWriter } from '../src/write/serve-writer.js';

if (parentPort === null) throw new Error('workers/write-splits.js runs as a worker thread');
serveWriter(parentPort, workerData as WriterSetup);
