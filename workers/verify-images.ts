/**
 * A worker of `verify`'s pool (piscina): checks that each image of a row group of an output decodes. Images arrive with
 * their buffers transferred. The logic is src/verify/check-images.ts, the messages src/verify/protocol.ts.
 */
import { checkImages } from '../src/verify/check-images.js';

export default checkImages;
