import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { convert } from '../../src/run/convert.js';
import type { ConvertReport } from '../../src/run/convert-report.js';
import { OutputError } from '../../src/errors.js';
import { imageStoreInfo, ownCacheDir } from '../../src/image/image-store-dir.js';
import { trimImageStore } from '../../src/image/trim-image-store.js';
import { PackReader, PackWriter, packIndexes, readPackIndex, type PackedEntry } from '../../src/image/image-pack.js';
import { buildPackedIndex, packedEntries, packedNames } from '../../src/image/packed-index.js';
import { MARKER_FILE } from '../../src/dirs/tool-marker.js';
import { addRejectedRows, assertSameFiles, filesOf, runCli, sampleDir, tempDir } from '../support/fixtures.js';

/** Every file under `dir`, relative, with the ones whose names end with `ending`. */
async function filesIn(dir: string, ending: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith(ending)).map((entry) => path.join(entry.parentPath, entry.name));
}

/** Flips a byte in the last record of one pack of re-encoded images in `cache`; resolves with the pack. */
async function damageOneEntry(cache: string): Promise<string> {
  const packs = await filesIn(cache, '.pack');
  const sizes = await Promise.all(packs.map(async (file) => (await readFile(file)).byteLength));
  // The largest: a pack of images (a pack of rejects alone is a few hundred bytes).
  const pack = packs[sizes.indexOf(Math.max(...sizes))];
  assert.ok(pack !== undefined);
  const bytes = await readFile(pack);
  bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
  await writeFile(pack, bytes);
  return pack;
}

describe('the cache of image work', () => {
  let input: string;
  let dir: string;

  before(async () => {
    input = await sampleDir(200, { files: 2 });
    await addRejectedRows(input);
    dir = await tempDir();
  });

  /** Converts with a cache of its own in `cache`; resolves with the report. */
  function run(output: string, cache: string, options: Record<string, unknown> = {}): Promise<ConvertReport> {
    return convert({ input: [input], output: path.join(dir, output), cacheDir: cache, numProc: 2, maxRejectFraction: 1, ...options });
  }

  it('makes a re-run decode no image, whatever the seed, test size, batch size or worker count; the output is the same', async () => {
    const cache = await tempDir();
    const first = await run('first', cache);
    assert.equal(first.images.fromCache, 0);
    assert.ok(first.images.validated > 150, `decoded ${first.images.validated}`);
    const again = await run('again', cache);
    assert.equal(again.images.validated, 0);
    // Each distinct image from the cache: once, or twice where two workers reach it at the same moment.
    assert.ok(again.images.fromCache >= again.images.distinct && again.images.fromCache <= again.images.distinct + again.images.repeated, `${again.images.fromCache} from the cache`);
    assert.equal(again.images.repeated, first.images.repeated);
    assertSameFiles(await filesOf(path.join(dir, 'again')), await filesOf(path.join(dir, 'first')), 'a re-run');
    const other = await run('other', cache, { seed: 9, testSize: 0.2, writerBatchSize: 17, numProc: 1 });
    assert.equal(other.images.validated, 0);
    assert.deepEqual(other.rejected.byCode, first.rejected.byCode, 'rejects come from the cache too');
  });

  it('re-encodes once for --images jpeg, then never again, to the same bytes', async () => {
    const cache = await tempDir();
    await run('keep', cache);
    const jpeg = await run('jpeg', cache, { images: 'jpeg', quality: 80 });
    assert.ok(jpeg.images.validated > 150, 'another image policy starts afresh');
    assert.ok(jpeg.images.reencoded > 150);
    const again = await run('jpeg-again', cache, { images: 'jpeg', quality: 80 });
    assert.equal(again.images.validated, 0);
    assert.equal(again.images.reencoded, jpeg.images.reencoded);
    assertSameFiles(await filesOf(path.join(dir, 'jpeg-again')), await filesOf(path.join(dir, 'jpeg')), 'jpeg from the cache');
    const info = await imageStoreInfo(cache);
    assert.ok(info.reencoded > 150 && info.rejected > 0 && info.verdicts > 150, JSON.stringify(info));
  });

  it('packs re-encoded images into a few files, not a file each; an index entry cut short or changed is skipped', async () => {
    const cache = await tempDir();
    const first = await run('packed-1', cache, { images: 'jpeg', quality: 65 });
    assert.ok(first.images.reencoded > 150);
    const files = (await readdir(path.join(cache, 'images'), { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
    const packs = files.filter((entry) => entry.name.endsWith('.pack'));
    assert.ok(packs.length >= 1 && packs.length <= 2, `${packs.length} packs (a worker's each)`);
    assert.equal(files.length, 2 * packs.length, 'a pack and its index, nothing else');
    // The largest index: cut its last entry short and change a byte of its first.
    const indexes = await filesIn(cache, '.idx');
    const sizes = await Promise.all(indexes.map(async (file) => (await readFile(file)).byteLength));
    const index = indexes[sizes.indexOf(Math.max(...sizes))] ?? '';
    const bytes = await readFile(index);
    bytes[5] = (bytes[5] ?? 0) ^ 0x01;
    await writeFile(index, bytes.subarray(0, bytes.byteLength - 10));
    const again = await run('packed-2', cache, { images: 'jpeg', quality: 65 });
    assert.equal(again.images.validated, 2, 'the two images of those entries were re-encoded again, and only they');
    assertSameFiles(await filesOf(path.join(dir, 'packed-2')), await filesOf(path.join(dir, 'packed-1')), 'with two entries lost');
  });

  it('never trusts a damaged entry: it is redone, and the output is as without the cache', async () => {
    const cache = await tempDir();
    await run('jpeg-1', cache, { images: 'jpeg', quality: 70 });
    await damageOneEntry(cache);
    const damaged = await run('jpeg-2', cache, { images: 'jpeg', quality: 70 });
    assert.equal(damaged.images.validated, 1, 'the damaged image was re-encoded again');
    assertSameFiles(await filesOf(path.join(dir, 'jpeg-2')), await filesOf(path.join(dir, 'jpeg-1')), 'after a damaged entry');
    // The image redone went into the second run's pack: the next run finds it there, beside the damaged record.
    const third = await run('jpeg-3', cache, { images: 'jpeg', quality: 70 });
    assert.equal(third.images.validated, 0, 'nothing redone once more');

    // A verdict line changed: its image is decoded again; the others are still used.
    await run('keep-1', cache);
    const [log] = await filesIn(path.join(cache, 'verdicts'), '.log');
    assert.ok(log !== undefined);
    const lines = (await readFile(log, 'utf8')).split('\n');
    lines[0] = `${lines[0]?.slice(0, 30) ?? ''}X${lines[0]?.slice(31) ?? ''}`;
    await writeFile(log, lines.join('\n'));
    const changed = await run('keep-2', cache);
    assert.equal(changed.images.validated, 1);
    assertSameFiles(await filesOf(path.join(dir, 'keep-2')), await filesOf(path.join(dir, 'keep-1')), 'after a changed verdict');
  });

  it('is shared safely by runs at the same time, kept within --cache-size, and left alone with --no-cache', async () => {
    const cache = await tempDir();
    const reference = await filesOf(path.join(dir, 'first'));
    const env = { RLAIF_V_CACHE: cache };
    const outputs = [0, 1, 2].map((index) => path.join(dir, `together-${index}`));
    const results = await Promise.all(outputs.map((output) => runCli(['convert', '-i', input, '-o', output, '--num-proc', '1', '--max-reject-fraction', '1', '--quiet'], { env })));
    for (const [index, result] of results.entries()) {
      assert.equal(result.code, 0, result.stderr);
      assertSameFiles(await filesOf(outputs[index] ?? ''), reference, `run ${index} of three at once`);
    }
    const none = await tempDir();
    const off = await runCli(['convert', '-i', input, '-o', path.join(dir, 'off'), '--no-cache', '--max-reject-fraction', '1', '--json'], { env: { RLAIF_V_CACHE: none } });
    assert.equal(off.code, 0, off.stderr);
    assert.equal((JSON.parse(off.stdout) as ConvertReport).images.fromCache, 0);
    assert.deepEqual(await readdir(none), [], '--no-cache writes nothing');
    // Bounded: the re-encoded images do not all fit in 100 KB; the least recently used go, but never a file that is not
    // the cache's own, however old (a cache pointed at ~/.cache must not eat it).
    const foreign = path.join(cache, 'images', 'notes.txt');
    await mkdir(path.dirname(foreign), { recursive: true });
    await writeFile(foreign, 'x'.repeat(200_000));
    await utimes(foreign, new Date(0), new Date(0));
    await writeFile(path.join(cache, 'thesis.pdf'), 'y'.repeat(200_000));
    await run('small', cache, { images: 'png', cacheSize: '100KB' });
    const info = await imageStoreInfo(cache);
    assert.ok(info.bytes <= 100_000, `the cache holds ${info.bytes} bytes`);
    const shown = await runCli(['cache', 'info'], { env });
    assert.match(shown.stdout, new RegExp(`${cache.replace(/[/.]/g, '\\$&')}: [\\d.]+ (B|KiB); [\\d,]+ image\\(s\\) found whole and kept, [\\d,]+ re-encoded, [\\d,]+ rejected`));
    assert.ok(existsSync(foreign) && existsSync(path.join(cache, 'thesis.pdf')), 'files not the cache\'s own are left alone');
    const cleared = await runCli(['cache', 'clear'], { env });
    assert.equal(cleared.code, 0);
    // Only the cache's own entries go, and the folders they leave empty: images/ keeps what else is in it.
    assert.deepEqual((await readdir(cache)).sort(), [MARKER_FILE, 'CACHEDIR.TAG', 'images', 'thesis.pdf'].sort());
    assert.deepEqual(await readdir(path.join(cache, 'images')), ['notes.txt']);
  });

  it("never uses, tags or clears a directory of other files: RLAIF_V_CACHE pointed at a user's folder", async () => {
    const project = await tempDir();
    await mkdir(path.join(project, 'images', 'cats'), { recursive: true });
    await writeFile(path.join(project, 'images', 'cats', 'cat1.jpg'), 'a cat');
    await mkdir(path.join(project, 'verdicts'));
    await writeFile(path.join(project, 'verdicts', 'final.log'), 'mine');
    const before = (await readdir(project, { recursive: true })).sort();
    const env = { RLAIF_V_CACHE: project };
    const converted = await runCli(['convert', '-i', input, '-o', path.join(dir, 'into-project'), '--quiet'], { env });
    assert.equal(converted.code, 2, converted.stderr);
    assert.match(converted.stderr, /The cache directory \S+ holds files that are not rlaif-v's cache .* --no-cache/);
    assert.ok(!existsSync(path.join(dir, 'into-project')) && !existsSync(path.join(dir, 'into-project.partial')), 'refused before any work');
    const refused = await runCli(['cache', 'clear'], { env });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /is not rlaif-v's cache \(it has no \.rlaif-v\.json saying so\): nothing in it was removed/);
    assert.deepEqual((await readdir(project, { recursive: true })).sort(), before, 'not a file was added, changed or removed');
    assert.equal(await readFile(path.join(project, 'images', 'cats', 'cat1.jpg'), 'utf8'), 'a cat');
    // An empty directory is taken as the cache, and marked so; a cache in the input is refused.
    const empty = await tempDir();
    const took = await runCli(['convert', '-i', input, '-o', path.join(dir, 'into-empty'), '--quiet', '--max-reject-fraction', '1'], { env: { RLAIF_V_CACHE: empty } });
    assert.equal(took.code, 0, took.stderr);
    assert.ok(existsSync(path.join(empty, MARKER_FILE)) && existsSync(path.join(empty, 'CACHEDIR.TAG')));
    const inside = await runCli(['convert', '-i', input, '-o', path.join(dir, 'cache-in-input'), '--quiet'], { env: { RLAIF_V_CACHE: path.join(input, 'cache') } });
    assert.equal(inside.code, 2);
    assert.match(inside.stderr, /The cache \(RLAIF_V_CACHE\) \S+ lies inside the input/);
    assert.ok(!existsSync(path.join(input, 'cache')));
    // Nor in the output or its staging directory (it would be published, or removed with the output it replaces).
    for (const cacheDir of [path.join(dir, 'with-cache.partial', 'cache'), path.join(dir, 'with-cache', 'cache'), path.join(dir, 'with-cache')]) {
      const overlapping = await runCli(['convert', '-i', input, '-o', path.join(dir, 'with-cache'), '--quiet'], { env: { RLAIF_V_CACHE: cacheDir } });
      assert.equal(overlapping.code, 2, cacheDir);
      assert.match(overlapping.stderr, /are one inside the other/);
    }
    // A link in the place of one of its folders is followed by nothing of the cache: clear leaves what it points at.
    const logs = await tempDir();
    await writeFile(path.join(logs, '1-2-host-3.log'), 'the user\'s'); // named as the cache names its logs
    await rm(path.join(empty, 'verdicts'), { recursive: true, force: true });
    await symlink(logs, path.join(empty, 'verdicts'));
    // Nor does a run write through it.
    const linked = await runCli(['convert', '-i', input, '-o', path.join(dir, 'through-link'), '--quiet', '--max-reject-fraction', '1'], { env: { RLAIF_V_CACHE: empty } });
    assert.equal(linked.code, 0, linked.stderr);
    assert.deepEqual(await readdir(logs), ['1-2-host-3.log'], 'nothing written where the link leads');
    assert.equal((await runCli(['cache', 'clear'], { env: { RLAIF_V_CACHE: empty } })).code, 0);
    assert.equal(await readFile(path.join(logs, '1-2-host-3.log'), 'utf8'), 'the user\'s');
  });

  it("takes an older version's cache, which holds nothing but its own, and marks it; not one with anything else in it", async () => {
    const cache = await tempDir();
    await run('old-1', cache);
    await rm(path.join(cache, MARKER_FILE));
    const again = await run('old-2', cache);
    assert.equal(again.images.validated, 0, 'its verdicts are used');
    assert.ok(existsSync(path.join(cache, MARKER_FILE)));
    await rm(path.join(cache, MARKER_FILE));
    await writeFile(path.join(cache, 'images', 'notes.txt'), 'mine');
    await assert.rejects(run('old-3', cache), (error: unknown) => error instanceof OutputError && error.code === 'ERR_CACHE_NOT_OURS');
    assert.equal(await readFile(path.join(cache, 'images', 'notes.txt'), 'utf8'), 'mine');
  });

  it('does not cost a row a damaged entry it cannot remove (a read-only cache)', async (t) => {
    const cache = await tempDir();
    await run('ro-1', cache, { images: 'jpeg', quality: 60 });
    const blob = await damageOneEntry(cache);
    // Its folder made immutable: not even root may remove the entry (where chattr and the filesystem allow).
    const locked = spawnSync('chattr', ['+i', path.dirname(blob)]);
    if (locked.status !== 0) return t.skip(`chattr +i is not available here: ${locked.stderr?.toString().trim() ?? locked.error?.message ?? ''}`);
    try {
      const again = await run('ro-2', cache, { images: 'jpeg', quality: 60 });
      assert.equal(again.rejected.byCode.worker_failed, undefined);
      assertSameFiles(await filesOf(path.join(dir, 'ro-2')), await filesOf(path.join(dir, 'ro-1')), 'with a damaged entry that stays');
      assert.ok(existsSync(blob), 'the entry could not be removed, and was not used');
    } finally {
      spawnSync('chattr', ['-i', path.dirname(blob)]);
    }
  });
});

describe('trimming the packs of the cache', () => {
  it('removes a pack with its index, least recently used first, never the pack of a run still writing it', async () => {
    const cache = await tempDir();
    await ownCacheDir(cache);
    const folder = path.join(cache, 'images', 'a'.repeat(24));
    await mkdir(folder, { recursive: true });
    const live = `${process.pid}-${Date.now()}-${hostname()}`;
    const dead = `999999999-${Date.now()}-${hostname()}`;
    for (const [name, age] of [[`${live}-1-0`, 2], [`${dead}-1-0`, 1]] as const) {
      for (const ending of ['.pack', '.idx']) {
        await writeFile(path.join(folder, name + ending), 'x'.repeat(1000));
        const when = new Date(Date.now() - age * 3600_000);
        await utimes(path.join(folder, name + ending), when, when);
      }
    }
    // The live run's pack is the older, but it is being written: only the dead run's goes, with its index.
    assert.deepEqual(await trimImageStore(cache, 0), { removed: 1, bytes: 2000 });
    assert.deepEqual((await readdir(folder)).sort(), [`${live}-1-0.idx`, `${live}-1-0.pack`]);
    // Once that run says it has finished, its pack goes too.
    assert.deepEqual(await trimImageStore(cache, 0, live), { removed: 1, bytes: 0 });
    assert.deepEqual(await readdir(folder), []);
  });

  it("takes a pack whose run's process id now belongs to a later process for a finished run's", async (t) => {
    if (!existsSync('/proc/self/stat')) return t.skip('no /proc here: a process id alone is taken as the run');
    const cache = await tempDir();
    await ownCacheDir(cache);
    const folder = path.join(cache, 'images', 'b'.repeat(24));
    await mkdir(folder, { recursive: true });
    // This process's id, in a run of a day ago: this process started after it, so that run is over.
    const old = `${process.pid}-${Date.now() - 24 * 3600_000 - process.uptime() * 1000}-${hostname()}-1-0`.replace(/\.\d+/, '');
    for (const ending of ['.pack', '.idx']) await writeFile(path.join(folder, old + ending), 'x'.repeat(100));
    assert.deepEqual(await trimImageStore(cache, 0), { removed: 1, bytes: 0 });
  });
});

describe('the packs of the cache', () => {
  it('read only the entries whose CRC holds', async () => {
    const folder = path.join(await tempDir(), 'images', 'c'.repeat(24));
    const writer = new PackWriter(folder, `${process.pid}-1-${hostname()}-1`);
    const keys = ['a', 'b', 'c'].map((letter) => Buffer.alloc(32, letter).toString('base64'));
    for (const key of keys) writer.append(key, 'bin', Buffer.from(`content of ${key}`));
    writer.close();
    const [index] = packIndexes(folder);
    assert.ok(index !== undefined);
    const bytes = await readFile(index);
    bytes[48 + 33] = (bytes[48 + 33] ?? 0) ^ 0x01; // the second entry's offset
    await writeFile(index, bytes);
    const found: string[] = [];
    readPackIndex(index, (key) => found.push(key));
    assert.deepEqual(found, [keys[0], keys[2]]);
  });

  it('are found through one table the workers share, every entry of a key in the order found', async () => {
    const folder = path.join(await tempDir(), 'images', 'f'.repeat(24));
    const keyOf = (n: number): string => createHash('sha256').update(String(n)).digest('base64');
    for (const [name, from] of [['1', 0], ['2', 150]] as const) {
      const writer = new PackWriter(folder, `${process.pid}-${name}-${hostname()}-1`);
      for (let n = from; n < from + 150; n++) writer.append(keyOf(n), n % 7 === 0 ? 'rej' : 'bin', Buffer.from(`image ${n}`));
      if (name === '2') writer.append(keyOf(3), 'bin', Buffer.from('image 3 again'));
      writer.close();
    }
    const { index, entries } = buildPackedIndex(folder);
    assert.equal(entries, 301);
    const packs = packedNames(index, folder);
    const reader = new PackReader();
    for (let n = 0; n < 300; n++) {
      const found = packedEntries(index, packs, keyOf(n));
      assert.equal(found.length, n === 3 ? 2 : 1, `key ${n}`);
      assert.equal(found[0]?.kind, n % 7 === 0 ? 'rej' : 'bin');
      const contents = found.map((entry) => reader.read(keyOf(n), entry)?.toString()).sort();
      assert.deepEqual(contents, n === 3 ? ['image 3', 'image 3 again'] : [`image ${n}`]);
    }
    assert.deepEqual(packedEntries(index, packs, keyOf(300)), []);
    reader.close();
  });

  it('keep at most 16 open at once, and read every record all the same', async () => {
    const folder = path.join(await tempDir(), 'images', 'd'.repeat(24));
    const entries: [string, PackedEntry][] = [];
    for (let pack = 0; pack < 40; pack++) {
      const writer = new PackWriter(folder, `${process.pid}-${pack}-${hostname()}-1`);
      writer.append(Buffer.alloc(32, pack).toString('base64'), 'bin', Buffer.from(`pack ${pack}`));
      writer.close();
    }
    for (const index of packIndexes(folder)) readPackIndex(index, (key, entry) => entries.push([key, entry]));
    assert.equal(entries.length, 40);
    const reader = new PackReader();
    for (let round = 0; round < 2; round++) {
      for (const [key, entry] of entries) assert.match(reader.read(key, entry)?.toString() ?? '', /^pack \d+$/);
      assert.ok(reader.openCount <= 16, `${reader.openCount} open`);
    }
    reader.close();
  });

  it('never wait on a FIFO, nor follow a link, named like a pack or an index', async (t) => {
    const folder = path.join(await tempDir(), 'images', 'e'.repeat(24));
    const writer = new PackWriter(folder, `${process.pid}-1-${hostname()}-1`);
    const key = Buffer.alloc(32, 1).toString('base64');
    writer.append(key, 'bin', Buffer.from('kept'));
    writer.close();
    const made = spawnSync('mkfifo', [path.join(folder, `${process.pid}-2-${hostname()}-1-0.idx`)]);
    if (made.status !== 0) return t.skip('mkfifo is not available here');
    await symlink('/dev/zero', path.join(folder, `${process.pid}-3-${hostname()}-1-0.idx`));
    const entries: PackedEntry[] = [];
    for (const index of packIndexes(folder)) readPackIndex(index, (_key, entry) => entries.push(entry));
    assert.equal(entries.length, 1, 'the real index alone');
    // A pack replaced by a link is not read through it.
    const [entry] = entries as [PackedEntry];
    await rm(entry.pack);
    await symlink('/dev/zero', entry.pack);
    assert.equal(new PackReader().read(key, entry), null);
  });
});
