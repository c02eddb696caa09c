/**
 * A local server that speaks the parts of the Hugging Face Hub's HTTP API that `@huggingface/hub` uses to download and
 * push datasets: repo info, tree listing, paths-info, resolve (Range, ETag), repo creation, preupload, LFS batch with
 * basic and multipart transfer, NDJSON commits, and (when `xet` is set) the Xet upload path: the LFS batch answering
 * with the `xet` transfer, the write-token endpoint, xorb and shard uploads and the global-dedup chunk query (see
 * xet-store.ts). It keeps what it receives (LFS objects and rebuilt Xet files on disk, commits in memory) and can be
 * told to fail: answer a status (500, 429 with Retry-After), or drop the connection part way through a download or an
 * upload. Tests run the real client against it; nothing here talks to the internet.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { XetStore } from './xet-store.js';

export interface HubFile {
  path: string;
  size: number;
  /** Git object id: sha1 of the git blob for regular files, the LFS pointer's sha1 for LFS files. */
  oid: string;
  /** sha256 of the content, for files stored with LFS. */
  lfs: { oid: string; size: number } | null;
  /** The Xet file hash, for files pushed through Xet. */
  xetHash?: string;
  /** Where the content is on disk. */
  blobPath: string;
  lastCommit: string;
}

interface Commit {
  oid: string;
  title: string;
  files: Map<string, HubFile>;
}

interface Repo {
  id: string;
  private: boolean;
  commits: Commit[];
}

export interface Fault {
  /** Which requests: matched against `METHOD /path` (no query). */
  match: RegExp;
  /** How many matching requests fail. Default 1. */
  times?: number;
  /**
   * `status`: answer `status` (with `retryAfter` seconds, if given). `drop-download`: send the headers and
   * `afterBytes` of the body, then cut the connection. `drop-upload`: read `afterBytes` of the request body, then cut.
   * `stall`: hold the request until `until` resolves, then answer it normally.
   */
  kind: 'status' | 'drop-download' | 'end-early' | 'drop-upload' | 'stall';
  status?: number;
  retryAfter?: number;
  afterBytes?: number;
  /** `stall`: the request is answered only once this resolves. */
  until?: Promise<void>;
  /** Only requests with (true) or without (false) a Range header; default both. */
  ranged?: boolean;
  /** Let this many matching requests through before the fault applies. Default 0. */
  skip?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | undefined;
  status: number;
  authorized: boolean;
}

export const TEST_TOKEN = 'hf_localtesttoken0123456789';

const LFS_EXTENSIONS = ['.parquet', '.arrow', '.bin', '.safetensors'];

function sha(algorithm: 'sha1' | 'sha256', ...parts: (string | Buffer)[]): string {
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

function gitBlobOid(content: Buffer): string {
  return sha('sha1', `blob ${content.byteLength}\0`, content);
}

function lfsPointer(oid: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${size}\n`;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorCode?: string,
  ) {
    super(message);
  }
}

async function readBody(request: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function json(response: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

/** A Hub on 127.0.0.1. `await LocalHub.start()`, point HF_ENDPOINT (or `hubUrl`) at `url`, `close()` when done. */
export class LocalHub {
  readonly url: string;
  readonly #server: http.Server;
  readonly #dir: string;
  readonly #repos = new Map<string, Repo>();
  /** LFS objects by `<repo>:<sha256>`: each repo has its own store, as on the Hub. */
  readonly #objects = new Map<string, { size: number; path: string; xetHash?: string }>();
  /** Xet write tokens handed out, with the repo each may write to. */
  readonly #casTokens = new Map<string, string>();
  readonly #faults: (Fault & { left: number; skip: number })[] = [];
  readonly #tokens = new Set<string>([TEST_TOKEN]);
  /** Every request, in order. */
  readonly requests: LoggedRequest[] = [];
  /**
   * Files registered per `<repo>:<sha256>`: each LFS object received, each file a Xet shard describes (again or not).
   * More than one means a file was sent twice.
   */
  readonly uploads = new Map<string, number>();
  /** Listeners told of each completed LFS upload, by `<repo>:<sha256>` (tests kill a push after the first). */
  readonly onUpload: ((oid: string) => void)[] = [];
  #commitCounter = 0;
  /** Objects larger than this are uploaded in parts of this size (the Hub's multipart transfer); null: never. */
  multipartChunkSize: number | null = null;
  /** Parts received by multipart uploads, failed ones excluded. */
  partUploads = 0;
  /** Offer the Xet transfer in the LFS batch, as the Hub does today. Off: basic and multipart only, as before Xet. */
  xet = false;
  /** Xorbs, shards and the global-dedup index; its `traffic` counts what pushes sent through Xet. */
  readonly xetStore: XetStore;

  private constructor(server: http.Server, dir: string) {
    this.#server = server;
    this.#dir = dir;
    this.xetStore = new XetStore(dir);
    const address = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${address.port}`;
  }

  static async start(): Promise<LocalHub> {
    const dir = await mkdtemp(path.join(tmpdir(), 'rlaif-v-hub-'));
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const hub = new LocalHub(server, dir);
    server.on('request', (request, response) => {
      void hub.#handle(request, response);
    });
    return hub;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await rm(this.#dir, { recursive: true, force: true });
  }

  /** Makes the next matching request(s) fail as the fault says. */
  fail(fault: Fault): void {
    this.#faults.push({ ...fault, left: fault.times ?? 1, skip: fault.skip ?? 0 });
  }

  /** Requests from index `from` on that fetched a file's body from resolve (ranged reads of footers do not count). */
  bodyDownloads(from = 0): string[] {
    return this.requests
      .slice(from)
      .filter((request) => request.method === 'GET' && request.path.includes('/resolve/') && request.range === undefined)
      .map((request) => request.path);
  }

  /** Drops every fault not yet spent. */
  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** The Xet (CAS) tokens handed out so far: like the Hub token, none may show in what a push prints. */
  get casTokens(): string[] {
    return [...this.#casTokens.keys()];
  }

  /** Faults not yet spent: a test that injected them expects none left. */
  get pendingFaults(): number {
    return this.#faults.reduce((sum, fault) => sum + fault.left, 0);
  }

  /** Creates a dataset repo whose first commit holds `files` (content read from disk now). */
  async createDataset(id: string, files: { path: string; file: string }[], options: { private?: boolean } = {}): Promise<string> {
    const repo: Repo = { id, private: options.private ?? false, commits: [] };
    this.#repos.set(id, repo);
    const commit = this.#newCommit(repo, 'Initial commit');
    for (const { path: filePath, file } of files) {
      const content = await readFile(file);
      commit.files.set(filePath, await this.#store(id, filePath, content, commit.oid));
    }
    return commit.oid;
  }

  /** The files at the head of `main`, by path. */
  head(id: string): Map<string, HubFile> {
    const repo = this.#repos.get(id);
    const commit = repo?.commits.at(-1);
    if (commit === undefined) throw new Error(`no repo ${id}`);
    return commit.files;
  }

  commits(id: string): { oid: string; title: string; paths: string[] }[] {
    return (this.#repos.get(id)?.commits ?? []).map((commit) => ({ oid: commit.oid, title: commit.title, paths: [...commit.files.keys()] }));
  }

  hasRepo(id: string): boolean {
    return this.#repos.has(id);
  }

  isPrivate(id: string): boolean | undefined {
    return this.#repos.get(id)?.private;
  }

  async content(id: string, filePath: string): Promise<Buffer> {
    const file = this.head(id).get(filePath);
    if (file === undefined) throw new Error(`no ${filePath} in ${id}`);
    return readFile(file.blobPath);
  }

  #newCommit(repo: Repo, title: string): Commit {
    const previous = repo.commits.at(-1);
    const oid = sha('sha1', `${repo.id}:${++this.#commitCounter}:${title}`);
    const commit: Commit = { oid, title, files: new Map(previous?.files ?? []) };
    repo.commits.push(commit);
    return commit;
  }

  async #store(repoId: string, filePath: string, content: Buffer, commitOid: string): Promise<HubFile> {
    const blobPath = path.join(this.#dir, `blob-${randomBytes(8).toString('hex')}`);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(blobPath, content);
    const isLfs = LFS_EXTENSIONS.some((extension) => filePath.endsWith(extension));
    if (isLfs) {
      const oid = sha('sha256', content);
      this.#objects.set(`${repoId}:${oid}`, { size: content.byteLength, path: blobPath });
      const pointer = Buffer.from(lfsPointer(oid, content.byteLength));
      return { path: filePath, size: content.byteLength, oid: gitBlobOid(pointer), lfs: { oid, size: content.byteLength }, blobPath, lastCommit: commitOid };
    }
    return { path: filePath, size: content.byteLength, oid: gitBlobOid(content), lfs: null, blobPath, lastCommit: commitOid };
  }

  /** Basic transfer (one PUT), or multipart (a PUT per part, then a completion POST) above `multipartChunkSize`. */
  #uploadAction(repoId: string, oid: string, size: number): { href: string; header?: Record<string, string>; expires_in: number } {
    const chunk = this.multipartChunkSize;
    if (chunk === null || size <= chunk) return { href: `${this.url}/lfs-upload/${repoId}/${oid}?size=${size}`, expires_in: 3600 };
    const header: Record<string, string> = { chunk_size: String(chunk) };
    for (let part = 1; part <= Math.ceil(size / chunk); part++) header[String(part)] = `${this.url}/lfs-part/${repoId}/${oid}/${part}`;
    return { href: `${this.url}/lfs-complete/${repoId}/${oid}`, header, expires_in: 3600 };
  }

  #fault(request: http.IncomingMessage, pathname: string): Fault | undefined {
    const key = `${request.method ?? 'GET'} ${pathname}`;
    const ranged = request.headers.range !== undefined;
    const fault = this.#faults.find(
      (candidate) => candidate.left > 0 && candidate.match.test(key) && (candidate.ranged === undefined || candidate.ranged === ranged),
    );
    if (fault === undefined) return undefined;
    if (fault.skip > 0) {
      fault.skip--;
      return undefined;
    }
    fault.left--;
    return fault;
  }

  #authorized(request: http.IncomingMessage): boolean | null {
    const header = request.headers.authorization;
    if (header === undefined) return null;
    return this.#tokens.has(header.replace(/^Bearer\s+/i, ''));
  }

  async #handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    const pathname = decodeURIComponent(url.pathname);
    const authorized = this.#authorized(request);
    const log: LoggedRequest = { method: request.method ?? 'GET', path: url.pathname, range: request.headers.range, status: 0, authorized: authorized === true };
    this.requests.push(log);
    response.on('finish', () => (log.status = response.statusCode));
    response.on('close', () => (log.status ||= response.statusCode));
    try {
      const fault = this.#fault(request, pathname);
      if (fault?.kind === 'status') {
        await readBody(request).catch(() => undefined);
        const status = fault.status ?? 500;
        json(response, status, { error: `injected ${status}` }, fault.retryAfter === undefined ? {} : { 'retry-after': String(fault.retryAfter) });
        return;
      }
      if (fault?.kind === 'stall') await fault.until;
      // The CAS takes the Xet tokens the Hub hands out, not Hub tokens: #routeXet checks those.
      if (authorized === false && !pathname.startsWith('/cas/')) throw new HttpError(401, 'Invalid credentials in Authorization header');
      await this.#route(request, response, url, pathname, fault);
    } catch (error) {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      if (error instanceof HttpError) {
        json(response, error.status, { error: error.message }, error.errorCode === undefined ? {} : { 'x-error-code': error.errorCode });
        return;
      }
      json(response, 500, { error: String(error) });
    }
  }

  #repo(id: string, authorized: boolean): Repo {
    const repo = this.#repos.get(id);
    if (repo === undefined || (repo.private && !authorized)) {
      throw new HttpError(404, 'Repository not found', 'RepoNotFound');
    }
    return repo;
  }

  #commit(repo: Repo, revision: string): Commit {
    const commit = revision === 'main' || revision === 'HEAD' ? repo.commits.at(-1) : repo.commits.find((candidate) => candidate.oid === revision);
    if (commit === undefined) throw new HttpError(404, `Invalid rev id: ${revision}`, 'RevisionNotFound');
    return commit;
  }

  #requireWrite(request: http.IncomingMessage): void {
    if (this.#authorized(request) !== true) throw new HttpError(401, 'You must be authenticated to write');
  }

  async #route(request: http.IncomingMessage, response: http.ServerResponse, url: URL, pathname: string, fault: Fault | undefined): Promise<void> {
    const method = request.method ?? 'GET';
    const authorized = this.#authorized(request) === true;
    let match: RegExpExecArray | null;

    if (method === 'GET' && pathname === '/api/whoami-v2') {
      this.#requireWrite(request);
      json(response, 200, { type: 'user', name: 'tester', auth: { type: 'access_token', accessToken: { displayName: 'test', role: 'write' } } });
      return;
    }
    if ((match = /^\/api\/datasets\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(pathname)) !== null) {
      const repo = this.#repo(match[1] ?? '', authorized);
      const commit = this.#commit(repo, match[2] ?? '');
      json(response, 200, { _id: repo.id, id: repo.id, sha: commit.oid, private: repo.private, downloads: 0, likes: 0, gated: false, lastModified: new Date(0).toISOString() });
      return;
    }
    if ((match = /^\/api\/datasets\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(pathname)) !== null) {
      const repo = this.#repo(match[1] ?? '', authorized);
      const commit = this.#commit(repo, match[2] ?? '');
      const prefix = match[3] === undefined || match[3] === '' ? '' : `${match[3]}/`;
      const recursive = url.searchParams.get('recursive') === 'true';
      const entries: unknown[] = [];
      const dirs = new Set<string>();
      for (const file of [...commit.files.values()].sort((a, b) => a.path.localeCompare(b.path))) {
        if (!file.path.startsWith(prefix)) continue;
        const rest = file.path.slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash !== -1 && !recursive) {
          const dir = prefix + rest.slice(0, slash);
          if (!dirs.has(dir)) entries.push({ type: 'directory', oid: sha('sha1', dir), size: 0, path: dir });
          dirs.add(dir);
          continue;
        }
        entries.push({
          type: 'file',
          oid: file.oid,
          size: file.size,
          path: file.path,
          ...(file.lfs === null ? {} : { lfs: { ...file.lfs, pointerSize: 134 } }),
          ...(file.xetHash === undefined ? {} : { xetHash: file.xetHash }),
        });
      }
      json(response, 200, entries);
      return;
    }
    if (method === 'POST' && (match = /^\/api\/datasets\/([^/]+\/[^/]+)\/paths-info\/(.+)$/.exec(pathname)) !== null) {
      const repo = this.#repo(match[1] ?? '', authorized);
      const commit = this.#commit(repo, match[2] ?? '');
      const body = JSON.parse((await readBody(request)).toString() || '{}') as { paths?: string[] };
      const found = (body.paths ?? []).flatMap((filePath) => {
        const file = commit.files.get(filePath);
        if (file === undefined) return [];
        return [{
          type: 'file',
          path: file.path,
          oid: file.oid,
          size: file.size,
          ...(file.lfs === null ? {} : { lfs: file.lfs }),
          ...(file.xetHash === undefined ? {} : { xetHash: file.xetHash }),
          lastCommit: { id: file.lastCommit, title: 'commit', date: new Date(0).toISOString() },
        }];
      });
      json(response, 200, found);
      return;
    }
    if ((method === 'GET' || method === 'HEAD') && (match = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(pathname)) !== null) {
      const repo = this.#repo(match[1] ?? '', authorized);
      const commit = this.#commit(repo, match[2] ?? '');
      const file = commit.files.get(match[3] ?? '');
      if (file === undefined) throw new HttpError(404, 'Entry not found', 'EntryNotFound');
      await this.#sendFile(request, response, file, commit.oid, fault);
      return;
    }
    if (method === 'POST' && pathname === '/api/repos/create') {
      this.#requireWrite(request);
      const body = JSON.parse((await readBody(request)).toString()) as { name: string; organization?: string; type?: string; private?: boolean; visibility?: string };
      const id = `${body.organization ?? 'tester'}/${body.name}`;
      if (body.type !== 'dataset') throw new HttpError(400, 'this server keeps datasets only');
      if (this.#repos.has(id)) throw new HttpError(409, 'You already created this dataset repo');
      const repo: Repo = { id, private: body.private === true || body.visibility === 'private', commits: [] };
      this.#repos.set(id, repo);
      this.#newCommit(repo, 'initial commit');
      json(response, 200, { url: `${this.url}/datasets/${id}`, name: id });
      return;
    }
    if (method === 'POST' && (match = /^\/api\/datasets\/([^/]+\/[^/]+)\/preupload\/(.+)$/.exec(pathname)) !== null) {
      this.#requireWrite(request);
      this.#repo(match[1] ?? '', true);
      const body = JSON.parse((await readBody(request)).toString()) as { files: { path: string; size: number }[] };
      json(response, 200, {
        files: body.files.map((file) => ({
          path: file.path,
          uploadMode: LFS_EXTENSIONS.some((extension) => file.path.endsWith(extension)) ? 'lfs' : 'regular',
          shouldIgnore: false,
        })),
      });
      return;
    }
    if (method === 'POST' && (match = /^\/datasets\/([^/]+\/[^/]+)\.git\/info\/lfs\/objects\/batch$/.exec(pathname)) !== null) {
      this.#requireWrite(request);
      this.#repo(match[1] ?? '', true);
      const repoId = match[1] ?? '';
      const body = JSON.parse((await readBody(request)).toString()) as { transfers?: string[]; objects: { oid: string; size: number }[] };
      if (this.xet && body.transfers?.includes('xet') === true) {
        json(response, 200, this.#xetBatch(repoId, body.objects), { 'content-type': 'application/vnd.git-lfs+json' });
        return;
      }
      json(
        response,
        200,
        {
          transfer: 'basic',
          objects: body.objects.map((object) => ({
            oid: object.oid,
            size: object.size,
            authenticated: true,
            ...(this.#objects.has(`${repoId}:${object.oid}`) ? {} : { actions: { upload: this.#uploadAction(repoId, object.oid, object.size) } }),
          })),
        },
        { 'content-type': 'application/vnd.git-lfs+json' },
      );
      return;
    }
    if (await this.#routeXet(request, response, method, pathname, fault)) return;
    if (method === 'PUT' && (match = /^\/lfs-part\/([^/]+\/[^/]+)\/([0-9a-f]{64})\/(\d+)$/.exec(pathname)) !== null) {
      await this.#receivePart(request, response, match[1] ?? '', match[2] ?? '', Number(match[3]), fault);
      return;
    }
    if (method === 'POST' && (match = /^\/lfs-complete\/([^/]+\/[^/]+)\/([0-9a-f]{64})$/.exec(pathname)) !== null) {
      await this.#completeMultipart(request, response, match[1] ?? '', match[2] ?? '');
      return;
    }
    if (method === 'PUT' && (match = /^\/lfs-upload\/([^/]+\/[^/]+)\/([0-9a-f]{64})$/.exec(pathname)) !== null) {
      await this.#receiveObject(request, response, match[1] ?? '', match[2] ?? '', Number(url.searchParams.get('size')), fault);
      return;
    }
    if (method === 'POST' && (match = /^\/api\/datasets\/([^/]+\/[^/]+)\/commit\/(.+)$/.exec(pathname)) !== null) {
      this.#requireWrite(request);
      const repo = this.#repo(match[1] ?? '', true);
      this.#commit(repo, match[2] ?? '');
      const lines = (await readBody(request))
        .toString()
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as { key: string; value: Record<string, string | number> });
      const header = lines.find((line) => line.key === 'header');
      const operations: (() => Promise<void>)[] = [];
      let commit: Commit | undefined;
      for (const line of lines) {
        const value = line.value;
        const filePath = String(value.path ?? '');
        if (line.key === 'lfsFile') {
          const object = this.#objects.get(`${repo.id}:${String(value.oid)}`);
          if (object === undefined) throw new HttpError(422, `LFS object ${String(value.oid)} for ${filePath} was never uploaded`);
          operations.push(async () => {
            (commit as Commit).files.set(filePath, {
              path: filePath,
              size: object.size,
              oid: gitBlobOid(Buffer.from(lfsPointer(String(value.oid), object.size))),
              lfs: { oid: String(value.oid), size: object.size },
              ...(object.xetHash === undefined ? {} : { xetHash: object.xetHash }),
              blobPath: object.path,
              lastCommit: (commit as Commit).oid,
            });
          });
        } else if (line.key === 'file') {
          const content = Buffer.from(String(value.content), value.encoding === 'base64' ? 'base64' : 'utf8');
          operations.push(async () => {
            (commit as Commit).files.set(filePath, await this.#store(repo.id, filePath, content, (commit as Commit).oid));
          });
        } else if (line.key === 'deletedFile') {
          operations.push(async () => {
            if (!(commit as Commit).files.delete(filePath)) throw new HttpError(404, `${filePath} is not in the repo`);
          });
        } else if (line.key !== 'header') {
          throw new HttpError(400, `unknown commit line ${line.key}`);
        }
      }
      commit = this.#newCommit(repo, String(header?.value.summary ?? 'commit'));
      try {
        for (const operation of operations) await operation();
      } catch (error) {
        repo.commits.pop();
        throw error;
      }
      json(response, 200, { success: true, commitOid: commit.oid, commitUrl: `${this.url}/datasets/${repo.id}/commit/${commit.oid}` });
      return;
    }
    throw new HttpError(404, `No route for ${method} ${pathname}`);
  }

  async #sendFile(request: http.IncomingMessage, response: http.ServerResponse, file: HubFile, commitOid: string, fault: Fault | undefined): Promise<void> {
    const etag = file.lfs?.oid ?? file.oid;
    const headers: Record<string, string> = {
      etag: `"${etag}"`,
      'x-repo-commit': commitOid,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
    };
    if (file.lfs !== null) {
      headers['x-linked-etag'] = `"${file.lfs.oid}"`;
      headers['x-linked-size'] = String(file.lfs.size);
    }
    let start = 0;
    let end = file.size - 1;
    const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? '');
    let status = 200;
    if (range !== null) {
      if (range[1] === '') {
        start = Math.max(0, file.size - Number(range[2]));
      } else {
        start = Number(range[1]);
        if (range[2] !== '') end = Math.min(end, Number(range[2]));
      }
      if (start >= file.size) {
        response.writeHead(416, { 'content-range': `bytes */${file.size}` });
        response.end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${file.size}`;
    }
    if (fault?.kind === 'end-early') {
      response.writeHead(status, headers);
      const stream = createReadStream(file.blobPath, { start, end: Math.min(end, start + (fault.afterBytes ?? 0) - 1) });
      stream.pipe(response);
      return;
    }
    headers['content-length'] = String(end - start + 1);
    response.writeHead(status, headers);
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    const stream = createReadStream(file.blobPath, { start, end });
    if (fault?.kind === 'drop-download') {
      let sent = 0;
      const limit = fault.afterBytes ?? 0;
      for await (const chunk of stream) {
        const buffer = chunk as Buffer;
        const room = limit - sent;
        if (room <= buffer.byteLength) {
          response.write(buffer.subarray(0, Math.max(0, room)));
          // Let the bytes reach the client before the connection is cut, as a dropped transfer would.
          await new Promise((resolve) => setTimeout(resolve, 20));
          response.destroy();
          stream.destroy();
          return;
        }
        response.write(buffer);
        sent += buffer.byteLength;
      }
    }
    stream.pipe(response);
  }

  /** Reads a request body into `file`, honouring a drop-upload fault; null when the upload was cut or broke off. */
  async #receiveBody(request: http.IncomingMessage, file: string, fault: Fault | undefined): Promise<{ bytes: number; sha256: string } | null> {
    const out = createWriteStream(file);
    const hash = createHash('sha256');
    let received = 0;
    try {
      for await (const chunk of request) {
        const buffer = chunk as Buffer;
        if (fault?.kind === 'drop-upload' && received + buffer.byteLength > (fault.afterBytes ?? 0)) {
          request.socket.destroy();
          throw new Error('dropped');
        }
        received += buffer.byteLength;
        hash.update(buffer);
        if (!out.write(buffer)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      }
      await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
      return { bytes: received, sha256: hash.digest('hex') };
    } catch {
      out.destroy();
      await rm(file, { force: true });
      return null;
    }
  }

  async #storeObject(repoId: string, oid: string, size: number, file: string): Promise<void> {
    const key = `${repoId}:${oid}`;
    const target = path.join(this.#dir, `lfs-${repoId.replace('/', '--')}-${oid}`);
    await rename(file, target);
    this.#objects.set(key, { size, path: target });
    this.uploads.set(key, (this.uploads.get(key) ?? 0) + 1);
    for (const listener of this.onUpload) listener(key);
  }

  async #receiveObject(request: http.IncomingMessage, response: http.ServerResponse, repoId: string, oid: string, size: number, fault: Fault | undefined): Promise<void> {
    const partial = path.join(this.#dir, `upload-${randomBytes(6).toString('hex')}`);
    const body = await this.#receiveBody(request, partial, fault);
    if (body === null) return;
    if (body.sha256 !== oid || body.bytes !== size) {
      await rm(partial, { force: true });
      throw new HttpError(400, `upload of ${oid} received ${body.bytes} bytes hashing to ${body.sha256}`);
    }
    await this.#storeObject(repoId, oid, size, partial);
    response.writeHead(200, { 'content-length': '0' });
    response.end();
  }

  /** One part of a multipart upload: kept until the completion request joins the parts. */
  async #receivePart(request: http.IncomingMessage, response: http.ServerResponse, repoId: string, oid: string, part: number, fault: Fault | undefined): Promise<void> {
    const file = this.#partFile(repoId, oid, part);
    const body = await this.#receiveBody(request, `${file}.receiving`, fault);
    if (body === null) return;
    await rename(`${file}.receiving`, file);
    this.partUploads++;
    response.writeHead(200, { etag: `"${body.sha256}"`, 'content-length': '0' });
    response.end();
  }

  async #completeMultipart(request: http.IncomingMessage, response: http.ServerResponse, repoId: string, oid: string): Promise<void> {
    const body = JSON.parse((await readBody(request)).toString()) as { oid: string; parts: { partNumber: number; etag: string }[] };
    const joined = path.join(this.#dir, `joined-${randomBytes(6).toString('hex')}`);
    const out = createWriteStream(joined);
    const hash = createHash('sha256');
    let size = 0;
    for (const part of [...body.parts].sort((a, b) => a.partNumber - b.partNumber)) {
      const content = await readFile(this.#partFile(repoId, oid, part.partNumber)).catch(() => null);
      if (content === null) throw new HttpError(400, `part ${part.partNumber} of ${oid} was never uploaded`);
      if (part.etag !== `"${sha('sha256', content)}"`) throw new HttpError(400, `part ${part.partNumber} of ${oid}: etag ${part.etag} does not match`);
      hash.update(content);
      size += content.byteLength;
      out.write(content);
    }
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    const digest = hash.digest('hex');
    if (digest !== oid) {
      await rm(joined, { force: true });
      throw new HttpError(400, `the parts of ${oid} join to ${digest}`);
    }
    await this.#storeObject(repoId, oid, size, joined);
    json(response, 200, { success: true });
  }

  #partFile(repoId: string, oid: string, part: number): string {
    return path.join(this.#dir, `part-${repoId.replace('/', '--')}-${oid}-${part}`);
  }

  /**
   * The LFS batch's answer with the Xet transfer: objects already stored need nothing; the others are to go through
   * Xet, their `href` the write-token endpoint (the token itself is not in the header, so the client asks for it).
   */
  #xetBatch(repoId: string, objects: { oid: string; size: number }[]): unknown {
    const session = randomBytes(8).toString('hex');
    return {
      transfer: 'xet',
      objects: objects.map((object) => ({
        oid: object.oid,
        size: object.size,
        authenticated: true,
        ...(this.#objects.has(`${repoId}:${object.oid}`)
          ? {}
          : { actions: { upload: { href: `${this.url}/api/datasets/${repoId}/xet-write-token/main`, header: { 'X-Xet-Session-Id': session }, expires_in: 3600 } } }),
      })),
    };
  }

  /** The repo a CAS request's token may write to. */
  #casRepo(request: http.IncomingMessage): string {
    const repo = this.#casTokens.get((request.headers.authorization ?? '').replace(/^Bearer\s+/i, ''));
    if (repo === undefined) throw new HttpError(401, 'Invalid or missing Xet token');
    return repo;
  }

  /** A request body whole, or null when a drop-upload fault cut it. */
  async #readUpload(request: http.IncomingMessage, fault: Fault | undefined): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const chunk of request) {
      const buffer = chunk as Buffer;
      if (fault?.kind === 'drop-upload' && received + buffer.byteLength > (fault.afterBytes ?? 0)) {
        request.socket.destroy();
        return null;
      }
      received += buffer.byteLength;
      chunks.push(buffer);
    }
    return Buffer.concat(chunks);
  }

  /** The Xet routes: the write token, xorb and shard uploads, the global-dedup query. True when one answered. */
  async #routeXet(request: http.IncomingMessage, response: http.ServerResponse, method: string, pathname: string, fault: Fault | undefined): Promise<boolean> {
    let match: RegExpExecArray | null;
    if (method === 'GET' && (match = /^\/api\/datasets\/([^/]+\/[^/]+)\/xet-write-token\/(.+)$/.exec(pathname)) !== null) {
      this.#requireWrite(request);
      const repo = this.#repo(match[1] ?? '', true);
      if (!this.xet) throw new HttpError(404, 'Xet is not enabled for this repo');
      const token = `xet_${randomBytes(16).toString('hex')}`;
      this.#casTokens.set(token, repo.id);
      json(response, 200, { accessToken: token, casUrl: `${this.url}/cas`, exp: Math.floor(Date.now() / 1000) + 3600 });
      return true;
    }
    if (method === 'POST' && (match = /^\/cas\/v1\/xorbs\/default\/([0-9a-f]{64})$/.exec(pathname)) !== null) {
      this.#casRepo(request);
      const body = await this.#readUpload(request, fault);
      if (body === null) return true;
      await this.xetStore.putXorb(match[1] ?? '', body).catch((error: unknown) => {
        throw new HttpError(400, (error as Error).message);
      });
      json(response, 200, { was_inserted: true });
      return true;
    }
    if (method === 'POST' && pathname === '/cas/v1/shards') {
      const repoId = this.#casRepo(request);
      const body = await this.#readUpload(request, fault);
      if (body === null) return true;
      const files = await this.xetStore.putShard(body).catch((error: unknown) => {
        throw new HttpError(400, (error as Error).message);
      });
      for (const file of files) {
        const key = `${repoId}:${file.sha256}`;
        // Counted before the store is looked at: a file a shard registers again is a file sent twice.
        this.uploads.set(key, (this.uploads.get(key) ?? 0) + 1);
        if (this.#objects.has(key)) continue;
        this.#objects.set(key, { size: file.size, path: file.path, xetHash: file.xetHash });
        for (const listener of this.onUpload) listener(key);
      }
      json(response, 200, { result: 0 });
      return true;
    }
    if (method === 'GET' && (match = /^\/cas\/v1\/chunks\/default\/([0-9a-f]{64})$/.exec(pathname)) !== null) {
      this.#casRepo(request);
      const shard = this.xetStore.dedupAnswer(match[1] ?? '');
      if (shard === null) throw new HttpError(404, 'chunk not found');
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': shard.length });
      response.end(shard);
      return true;
    }
    return false;
  }
}
