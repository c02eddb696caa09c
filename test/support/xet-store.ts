/**
 * The content-addressed store behind the local Hub's Xet support: the xorbs it received (checked: every chunk's hash
 * and the xorb's hash are recomputed), the shards that register them and describe files (each file rebuilt from its
 * xorbs and checked against its Xet hash, its range hashes and its sha256), and the global-dedup index that answers
 * "is this chunk known?" with a shard listing the xorbs uploaded with it, chunk hashes keyed by a secret as the Hub
 * keys them. Counts what it received, so tests can say what a push sent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileHash, getChunks, hashToHex, hexToBytes, hmac, verificationHash, xorbHash } from '@huggingface/xetchunk-wasm';
import { dedupShard, parseShard, xorbChunks, type ShardFile, type ShardXorb } from './xet-format.js';

interface StoredXorb {
  file: string;
  /** Each chunk's hash, its offset in the file (uncompressed) and length. */
  chunks: { hash: string; offset: number; bytes: number }[];
}

/** A file a shard described, rebuilt from its xorbs. */
export interface RebuiltFile {
  sha256: string;
  xetHash: string;
  size: number;
  path: string;
}

/** Bytes and requests the store received. */
export interface XetTraffic {
  xorbs: number;
  xorbBytes: number;
  shards: number;
  shardBytes: number;
  dedupQueries: number;
  dedupHits: number;
}

/**
 * About one chunk in 1,024, picked by its hash, is indexed for global dedup (with the first chunk of every file), the
 * share the Xet documentation gives; which bits of the hash xet-core tests is not modelled: @huggingface/hub only
 * ever asks about first chunks.
 */
function eligible(hash: string): boolean {
  return BigInt(`0x${hash.slice(48)}`) % 1024n === 0n;
}

export class XetStore {
  readonly #dir: string;
  readonly #xorbs = new Map<string, StoredXorb>();
  /** The xorb sections of the shards received, by index; the dedup index points into it. */
  readonly #shards: ShardXorb[][] = [];
  readonly #dedupIndex = new Map<string, number>();
  /** The shard that registered each xorb. */
  readonly #xorbShard = new Map<string, number>();
  readonly traffic: XetTraffic = { xorbs: 0, xorbBytes: 0, shards: 0, shardBytes: 0, dedupQueries: 0, dedupHits: 0 };

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Stores a xorb after checking that its chunks hash to what its name says. */
  async putXorb(hash: string, body: Buffer): Promise<void> {
    const chunks = xorbChunks(body);
    const hashed = chunks.map((chunk) => {
      const found = getChunks(chunk);
      // A chunk is a whole chunk of the content-defined chunker: chunked again alone it stays one chunk.
      if (found.length !== 1 || found[0] === undefined) throw new Error(`xorb ${hash}: a chunk of ${chunk.length} bytes is not one chunk`);
      return found[0];
    });
    const computed = hashToHex(xorbHash(hashed));
    if (computed !== hash) throw new Error(`xorb ${hash} hashes to ${computed}`);
    this.traffic.xorbs++;
    this.traffic.xorbBytes += body.length;
    if (this.#xorbs.has(hash)) return;
    const file = path.join(this.#dir, `xorb-${hash}`);
    await writeFile(file, Buffer.concat(chunks));
    let offset = 0;
    const entries = hashed.map((chunk) => {
      const entry = { hash: hashToHex(chunk.hash), offset, bytes: chunk.length };
      offset += chunk.length;
      return entry;
    });
    this.#xorbs.set(hash, { file, chunks: entries });
  }

  /**
   * Registers a shard: its xorbs must all have been uploaded with the chunks it lists; each file it describes is
   * rebuilt on disk and checked. Returns the files.
   */
  async putShard(body: Buffer): Promise<RebuiltFile[]> {
    const { files, xorbs } = parseShard(body);
    for (const xorb of xorbs) {
      const stored = this.#xorbs.get(xorb.hash);
      if (stored === undefined) throw new Error(`shard registers xorb ${xorb.hash}, never uploaded`);
      if (stored.chunks.map((chunk) => `${chunk.hash}:${chunk.offset}:${chunk.bytes}`).join() !== xorb.chunks.map((chunk) => `${chunk.hash}:${chunk.offset}:${chunk.bytes}`).join()) {
        throw new Error(`shard lists chunks of xorb ${xorb.hash} that it does not hold`);
      }
    }
    const rebuilt: RebuiltFile[] = [];
    for (const file of files) rebuilt.push(await this.#rebuild(file));
    const index = this.#shards.push(xorbs) - 1;
    for (const xorb of xorbs) {
      this.#xorbShard.set(xorb.hash, index);
      for (const chunk of xorb.chunks) if (eligible(chunk.hash)) this.#dedupIndex.set(chunk.hash, index);
    }
    for (const file of files) {
      const first = file.segments[0];
      const chunk = first === undefined ? undefined : this.#xorbs.get(first.xorb)?.chunks[first.start];
      const shard = first === undefined ? undefined : this.#xorbShard.get(first.xorb);
      if (chunk !== undefined && shard !== undefined) this.#dedupIndex.set(chunk.hash, shard);
    }
    this.traffic.shards++;
    this.traffic.shardBytes += body.length;
    return rebuilt;
  }

  async #rebuild(file: ShardFile): Promise<RebuiltFile> {
    const target = path.join(this.#dir, `file-${randomBytes(8).toString('hex')}`);
    const out = createWriteStream(target);
    const sha = createHash('sha256');
    const chunks: { hash: Uint8Array; length: number }[] = [];
    let size = 0;
    for (const segment of file.segments) {
      const xorb = this.#xorbs.get(segment.xorb);
      const range = xorb?.chunks.slice(segment.start, segment.end) ?? [];
      if (xorb === undefined || range.length !== segment.end - segment.start || range.length === 0) throw new Error(`file ${file.hash}: no chunks ${segment.start}-${segment.end} in xorb ${segment.xorb}`);
      const bytes = range.reduce((sum, chunk) => sum + chunk.bytes, 0);
      if (bytes !== segment.bytes) throw new Error(`file ${file.hash}: a segment says ${segment.bytes} bytes, its chunks hold ${bytes}`);
      if (segment.rangeHash !== null && hashToHex(verificationHash(range.map((chunk) => hexToBytes(chunk.hash)))) !== segment.rangeHash) {
        throw new Error(`file ${file.hash}: the range hash of chunks ${segment.start}-${segment.end} of ${segment.xorb} does not match`);
      }
      const handle = await open(xorb.file);
      const content = Buffer.alloc(bytes);
      await handle.read(content, 0, bytes, range[0]?.offset ?? 0);
      await handle.close();
      sha.update(content);
      if (!out.write(content)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      for (const chunk of range) chunks.push({ hash: hexToBytes(chunk.hash), length: chunk.bytes });
      size += bytes;
    }
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    const xetHash = hashToHex(fileHash(chunks));
    const sha256 = sha.digest('hex');
    if (xetHash !== file.hash) throw new Error(`file ${file.hash} rebuilds to content whose Xet hash is ${xetHash}`);
    if (file.sha256 === null || file.sha256 !== sha256) throw new Error(`file ${file.hash} rebuilds to sha256 ${sha256}, the shard says ${file.sha256 ?? 'none'}`);
    return { sha256, xetHash, size, path: target };
  }

  /**
   * The answer to a global-dedup query for `chunk`: null when no shard registered it as eligible, else a shard
   * listing the xorbs of the shard that did, their chunk hashes keyed with a new secret.
   */
  dedupAnswer(chunk: string): Buffer | null {
    this.traffic.dedupQueries++;
    const index = this.#dedupIndex.get(chunk);
    const xorbs = index === undefined ? undefined : this.#shards[index];
    if (xorbs === undefined) return null;
    this.traffic.dedupHits++;
    const key = randomBytes(32);
    const keyHex = hashToHex(key);
    const keyed = xorbs.map((xorb) => ({ hash: xorb.hash, chunks: xorb.chunks.map((entry) => ({ ...entry, hash: hashToHex(hmac(hexToBytes(entry.hash), key)) })) }));
    return dedupShard(keyed, keyHex);
  }
}
