/**
 * The parquet reader thread: parquet-wasm reads the input's row groups here, not on the main thread, where a trap on
 * damaged data could not be caught. The logic is src/parquet/serve-reader.ts, the messages src/parquet/protocol.ts.
 */
import { parentPort } from 'node:worker_threads';
import { serveReader } from '../src/parquet/serve-reader.js';

if (parentPort === null) throw new Error('workers/read-parquet.js runs as a worker thread');
serveReader(parentPort);
