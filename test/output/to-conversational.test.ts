import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rowNbytes, toConversational } from '../../src/output/to-conversational.js';

describe('toConversational', () => {
  it('builds the prompt, chosen, rejected and images of TRL\'s rlaif-v.py', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const row = toConversational('What is this?', 'A cat.', 'A dog.', { bytes, path: null });
    assert.deepEqual(row, {
      chosen: [{ role: 'assistant', content: [{ type: 'text', text: 'A cat.' }] }],
      rejected: [{ role: 'assistant', content: [{ type: 'text', text: 'A dog.' }] }],
      prompt: [{ role: 'user', content: [{ type: 'image', text: null }, { type: 'text', text: 'What is this?' }] }],
      images: [{ bytes, path: null }],
    });
  });

  it('keeps the columns in the order chosen, rejected, prompt, images', () => {
    const row = toConversational('q', 'c', 'r', { bytes: new Uint8Array(0), path: null });
    assert.deepEqual(Object.keys(row), ['chosen', 'rejected', 'prompt', 'images']);
  });
});

describe('rowNbytes', () => {
  it('counts UTF-8 bytes, not characters, and every image byte', () => {
    const ascii = rowNbytes(toConversational('ab', 'c', 'd', { bytes: new Uint8Array(10), path: null }));
    const wide = rowNbytes(toConversational('é😀', 'c', 'd', { bytes: new Uint8Array(10), path: null }));
    // 'é' is 2 bytes and '😀' 4 in UTF-8, against 2 bytes for 'ab'.
    assert.equal(wide - ascii, 4);
    const bigger = rowNbytes(toConversational('ab', 'c', 'd', { bytes: new Uint8Array(1010), path: null }));
    assert.equal(bigger - ascii, 1000);
  });
});
