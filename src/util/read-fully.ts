import { readSync } from 'node:fs';

/** `length` bytes of an open file from `position`, fewer where the file ends first (a read may return less than asked). */
export function readFully(fd: number, length: number, position: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const read = readSync(fd, bytes, done, length - done, position + done);
    if (read === 0) break;
    done += read;
  }
  return done === length ? bytes : bytes.subarray(0, done);
}
