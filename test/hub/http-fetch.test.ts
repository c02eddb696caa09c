import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { httpFetch } from '../../src/hub/http-fetch.js';
import { tempDir } from '../support/fixtures.js';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  sha256: string;
  bytes: number;
}

async function server(handler: (request: http.IncomingMessage, response: http.ServerResponse, received: Received) => void): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const instance = http.createServer((request, response) => {
    const hash = createHash('sha256');
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.byteLength;
    });
    request.on('end', () => {
      const entry = { method: request.method ?? '', url: request.url ?? '', headers: request.headers, sha256: hash.digest('hex'), bytes };
      received.push(entry);
      handler(request, response, entry);
    });
  });
  await new Promise<void>((resolve) => instance.listen(0, '127.0.0.1', resolve));
  after(() => {
    instance.closeAllConnections();
    instance.close();
  });
  return { url: `http://127.0.0.1:${(instance.address() as AddressInfo).port}`, received };
}

describe('httpFetch', () => {
  it('streams a file Blob as the request body, with its length, and reports upload progress up to 1', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'payload.bin');
    const content = Buffer.alloc(5 * 1024 * 1024 + 17, 7);
    content.write('start', 0);
    await writeFile(file, content);
    const { url, received } = await server((_request, response) => response.end('stored'));
    const progress: number[] = [];
    const init = { method: 'PUT', body: await openAsBlob(file), progressHint: { progressCallback: (value: number) => progress.push(value) } };
    const response = await httpFetch(`${url}/upload`, init as RequestInit);
    assert.equal(await response.text(), 'stored');
    assert.equal(received[0]?.bytes, content.byteLength);
    assert.equal(received[0]?.headers['content-length'], String(content.byteLength));
    assert.equal(received[0]?.sha256, createHash('sha256').update(content).digest('hex'));
    assert.ok(progress.length > 1, 'progress is told more than once');
    assert.equal(progress.at(-1), 1);
  });

  it('gives status, headers, url and a streaming body like fetch', async () => {
    const { url } = await server((_request, response) => {
      response.writeHead(206, { 'content-range': 'bytes 0-2/10', etag: '"abc"' });
      response.end('abc');
    });
    const response = await httpFetch(`${url}/file`, { headers: { range: 'bytes=0-2' } });
    assert.equal(response.status, 206);
    assert.equal(response.headers.get('content-range'), 'bytes 0-2/10');
    assert.equal(response.url, `${url}/file`);
    assert.equal(await response.text(), 'abc');
  });

  it('follows redirects, dropping Authorization when the origin changes', async () => {
    const target = await server((_request, response) => response.end('there'));
    const first = await server((request, response) => {
      if (request.url === '/same') {
        response.writeHead(302, { location: '/final' });
        response.end();
      } else if (request.url === '/away') {
        response.writeHead(307, { location: `${target.url}/cdn` });
        response.end();
      } else {
        response.end('here');
      }
    });
    const headers = { authorization: 'Bearer hf_secret' };
    assert.equal(await (await httpFetch(`${first.url}/same`, { headers })).text(), 'here');
    assert.equal(first.received.find((entry) => entry.url === '/final')?.headers.authorization, 'Bearer hf_secret');
    assert.equal(await (await httpFetch(`${first.url}/away`, { headers })).text(), 'there');
    assert.equal(target.received[0]?.headers.authorization, undefined);
  });

  it('rejects with an AbortError when aborted, and with a TypeError when the connection fails', async () => {
    const { url } = await server(() => undefined); // never answers
    const controller = new AbortController();
    const pending = httpFetch(`${url}/slow`, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(pending, { name: 'AbortError' });
    await assert.rejects(httpFetch('http://127.0.0.1:1/'), TypeError);
  });

  it('rejects, rather than hanging, on a request Node refuses to send', async () => {
    const { url } = await server((_request, response) => response.end());
    await assert.rejects(httpFetch(`${url}/x`, { headers: { 'x-bad': 'line\nbreak' } }), TypeError);
    await assert.rejects(httpFetch('ftp://127.0.0.1/file'), TypeError);
  });
});
