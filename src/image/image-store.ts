import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { KeptTable, keyWords } from './shared-images.js';
import type { PreparedImage } from './prepare-image.js';

/** Where the persistent cache of image work is, and what of it a run uses (see ImageStore). */
export interface ImageStoreSettings {
  dir: string;
  /** Key of the image policy (with the tool's and libvips' versions): entries of other policies are not used. */
  policy: string;
  /** This run's id, in the names of the files it writes. */
  run: string;
  /** The verdicts "found whole, kept" of earlier runs under this policy, as a shared table of keys. */
  kept: SharedArrayBuffer;
}

/**
 * The persistent cache of image work, as a worker sees it (image-store-dir.ts manages it as a whole). Entries are
 * keyed by the SHA-256 of an image's bytes under one image policy (its `policy` key also holds the tool's and
 * libvips' versions), and never trusted blindly:
 * - an image found whole and kept is one line in a log of verdicts, `verdicts/<pid>-<time>-<host>-<thread>.log`,
 *   each line with its CRC-32 (a line cut short or changed is skipped); a run loads the lines of its policy into a
 *   table in shared memory before it starts (`kept`);
 * - a re-encoded image or a rejected one is a file, `images/<policy>/<ab>/<sha256>.<bin|rej>`, holding the SHA-256 of
 *   its content before the content: a file that does not match is removed and the image prepared again.
 * Files are written aside and renamed into place, logs are one writer's each: runs can share the cache.
 */

/** Removes a damaged entry if it can: one that cannot be removed is merely not used (it must never cost a row). */
function forget(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch {
    // read-only, or not ours to remove
  }
}

/** What a stored file starts with: a format mark, then the SHA-256 of the content after it. */
const MAGIC = Buffer.from('RLVC1\n');
const HEADER = MAGIC.byteLength + 32;

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** A verdict line of the log, and its CRC-32. */
export function verdictLine(policy: string, key: string): string {
  const record = `${policy} ${key}`;
  return `${record}\t${crc32(record).toString(16)}\n`;
}

/** The key of a log line when it is whole and of `policy`, else null. */
export function parseVerdictLine(line: string, policy: string): string | null {
  const tab = line.lastIndexOf('\t');
  if (tab < 0) return null;
  const record = line.slice(0, tab);
  if (crc32(record).toString(16) !== line.slice(tab + 1)) return null;
  const [linePolicy, key] = record.split(' ');
  return linePolicy === policy && key !== undefined && key.length > 0 ? key : null;
}

export class ImageStore {
  readonly #settings: ImageStoreSettings;
  readonly #kept: KeptTable;
  #log: number | null = null;

  constructor(settings: ImageStoreSettings) {
    this.#settings = settings;
    this.#kept = new KeptTable(settings.kept);
  }

  #file(key: string, kind: 'bin' | 'rej'): string {
    const hex = Buffer.from(key, 'base64').toString('hex');
    return path.join(this.#settings.dir, 'images', this.#settings.policy, hex.slice(0, 2), `${hex}.${kind}`);
  }

  /**
   * What an earlier run prepared of these bytes, or undefined: nothing, or an entry that failed its check (removed
   * where it can be: a cache this run cannot write, on a read-only mount or another user's, keeps it, unused).
   */
  get(key: string, bytes: Uint8Array): PreparedImage | undefined {
    const words = keyWords(key);
    if (words !== null && this.#kept.has(words)) return { ok: true, bytes, reencoded: false };
    for (const kind of ['bin', 'rej'] as const) {
      const file = this.#file(key, kind);
      let data: Buffer;
      try {
        data = readFileSync(file);
      } catch {
        continue;
      }
      const content = data.subarray(HEADER);
      if (data.byteLength < HEADER || !data.subarray(0, MAGIC.byteLength).equals(MAGIC) || !sha256(content).equals(data.subarray(MAGIC.byteLength, HEADER))) {
        forget(file);
        continue;
      }
      // Used now: the last to be evicted (least recently used first).
      const now = new Date();
      try {
        utimesSync(file, now, now);
      } catch {
        // gone meanwhile: it was read whole all the same
      }
      if (kind === 'bin') return { ok: true, bytes: new Uint8Array(content), reencoded: true };
      try {
        const { code, message } = JSON.parse(content.toString('utf8')) as { code: string; message: string };
        return { ok: false, code: code as never, message };
      } catch {
        forget(file);
      }
    }
    return undefined;
  }

  /** Keeps what was prepared of an image for later runs. Failures to write only lose the entry. */
  set(key: string, image: PreparedImage): void {
    if (!image.ok && image.lasting === false) return;
    try {
      if (image.ok && !image.reencoded) {
        this.#log ??= this.#openLog();
        writeSync(this.#log, verdictLine(this.#settings.policy, key));
        return;
      }
      const content = image.ok ? image.bytes : Buffer.from(JSON.stringify({ code: image.code, message: image.message }));
      const file = this.#file(key, image.ok ? 'bin' : 'rej');
      mkdirSync(path.dirname(file), { recursive: true });
      const temp = `${file}.${this.#settings.run}-${threadId}.tmp`;
      writeFileSync(temp, Buffer.concat([MAGIC, sha256(content), content]));
      renameSync(temp, file);
    } catch {
      // A cache that cannot be written is a cache that does not help: the run goes on.
    }
  }

  #openLog(): number {
    const dir = path.join(this.#settings.dir, 'verdicts');
    mkdirSync(dir, { recursive: true });
    return openSync(path.join(dir, `${this.#settings.run}-${threadId}.log`), 'a');
  }

  close(): void {
    if (this.#log !== null) closeSync(this.#log);
    this.#log = null;
  }
}
