/**
 * A worker of the convert pool (piscina): converts one batch of source rows a task. The logic, and the messages, are in
 * src/work/ (convert-batch.ts, protocol.ts).
 */
import { convertBatch } from '../src/work/convert-batch.js';

export default convertBatch;
