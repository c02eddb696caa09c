import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { KeptTable, keyWords } from './shared-images.js';
import { PackReader, PackWriter } from './image-pack.js';
import { packedEntries, packedNames, type PackedIndex } from './packed-index.js';
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
  /** The re-encoded images and rejects of earlier runs under this policy: where in which pack each is. */
  packed: PackedIndex;
  /** False where a folder of the cache is a link: nothing is written. */
  writable: boolean;
}

/**
 * The persistent cache of image work, as a worker sees it (image-store-dir.ts manages it as a whole). Entries are
 * keyed by the SHA-256 of an image's bytes under one image policy (its `policy` key also holds the tool's and
 * libvips' versions), and never trusted blindly:
 * - an image found whole and kept is one line in a log of verdicts, `verdicts/<pid>-<time>-<host>-<thread>.log`,
 *   each line with its CRC-32 (a line cut short or changed is skipped); a run loads the lines of its policy into a
 *   table in shared memory before it starts (`kept`);
 * - a re-encoded image or a rejected one is a record in a pack, `images/<policy>/<pid>-<time>-<host>-<thread>-<n>.pack`,
 *   found through the pack's index and checked against its SHA-256 (see image-pack.ts): a record that does not match
 *   is not used, and the image is prepared again.
 * Logs and packs are one writer's each: runs can share the cache.
 */

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

/** A packed reject, or undefined when its content is not one. */
function asReject(content: Buffer): PreparedImage | undefined {
  try {
    const { code, message } = JSON.parse(content.toString('utf8')) as { code: unknown; message: unknown };
    return typeof code === 'string' && typeof message === 'string' ? { ok: false, code: code as never, message } : undefined;
  } catch {
    return undefined;
  }
}

export class ImageStore {
  readonly #settings: ImageStoreSettings;
  readonly #kept: KeptTable;
  readonly #reader = new PackReader();
  /** The packs of `settings.packed`, by number. */
  readonly #packs: string[];
  /** Keys whose packed entries all failed their check in this run: not read again. */
  readonly #damaged = new Set<string>();
  #writer: PackWriter | null = null;
  #log: number | null = null;
  /** Set when writing to the cache failed: nothing more is tried in this run (each try would cost system calls). */
  #unwritable = false;

  constructor(settings: ImageStoreSettings) {
    this.#settings = settings;
    this.#kept = new KeptTable(settings.kept);
    this.#packs = packedNames(settings.packed, this.#folder);
    this.#unwritable = !settings.writable;
  }

  get #folder(): string {
    return path.join(this.#settings.dir, 'images', this.#settings.policy);
  }

  /** What an earlier run prepared of these bytes, or undefined: nothing, or only entries that failed their check. */
  get(key: string, bytes: Uint8Array): PreparedImage | undefined {
    const words = keyWords(key);
    if (words !== null && this.#kept.has(words)) return { ok: true, bytes, reencoded: false };
    if (this.#damaged.has(key)) return undefined;
    const entries = packedEntries(this.#settings.packed, this.#packs, key);
    for (const entry of entries) {
      const content = this.#reader.read(key, entry);
      const found = content === null ? undefined : entry.kind === 'bin' ? { ok: true as const, bytes: new Uint8Array(content), reencoded: true } : asReject(content);
      if (found !== undefined) return found;
    }
    // Only damaged records: not read again in this run.
    if (entries.length > 0) this.#damaged.add(key);
    return undefined;
  }

  /** Keeps what was prepared of an image for later runs. Failures to write only lose the entry. */
  set(key: string, image: PreparedImage): void {
    if ((!image.ok && image.lasting === false) || this.#unwritable) return;
    try {
      if (image.ok && !image.reencoded) {
        this.#log ??= this.#openLog();
        writeSync(this.#log, verdictLine(this.#settings.policy, key));
        return;
      }
      this.#writer ??= new PackWriter(this.#folder, `${this.#settings.run}-${threadId}`);
      if (image.ok) this.#writer.append(key, 'bin', image.bytes);
      else this.#writer.append(key, 'rej', Buffer.from(JSON.stringify({ code: image.code, message: image.message })));
    } catch {
      // A cache that cannot be written is a cache that does not help: the run goes on.
      this.#unwritable = true;
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
    this.#writer?.close();
    this.#reader.close();
  }
}
