/** The per-row transform of TRL's `examples/datasets/rlaif-v.py`, as plain data. */

export interface ContentPart {
  type: string;
  text: string | null;
}

export interface Message {
  role: string;
  content: ContentPart[];
}

export interface ConversationalImage {
  bytes: Uint8Array;
  path: string | null;
}

export interface ConversationalRow {
  chosen: Message[];
  rejected: Message[];
  prompt: Message[];
  images: ConversationalImage[];
}

/**
 * Builds the conversational row: the question after an image placeholder as the user prompt, each answer as one
 * assistant message, and the row's one image in a list. Every other source column is dropped.
 */
export function toConversational(question: string, chosen: string, rejected: string, image: ConversationalImage): ConversationalRow {
  return {
    chosen: [{ role: 'assistant', content: [{ type: 'text', text: chosen }] }],
    rejected: [{ role: 'assistant', content: [{ type: 'text', text: rejected }] }],
    prompt: [{ role: 'user', content: [{ type: 'image', text: null }, { type: 'text', text: question }] }],
    images: [image],
  };
}

function stringBytes(value: string | null): number {
  // 4 bytes of offset per value, as in an Arrow string array, plus the UTF-8 data (counted, not encoded).
  return 4 + (value === null ? 0 : Buffer.byteLength(value, 'utf8'));
}

function messagesBytes(messages: Message[]): number {
  let total = 4;
  for (const message of messages) {
    total += stringBytes(message.role) + 4;
    for (const part of message.content) total += stringBytes(part.type) + stringBytes(part.text);
  }
  return total;
}

/**
 * The uncompressed Arrow size of one row, counted per row (offsets and data, not validity bitmaps) so that a split's
 * total does not depend on how rows were batched. This is the size `max_shard_size` and `num_bytes` are measured in.
 */
export function rowNbytes(row: ConversationalRow): number {
  let total = messagesBytes(row.chosen) + messagesBytes(row.rejected) + messagesBytes(row.prompt) + 4;
  for (const image of row.images) total += 4 + image.bytes.byteLength + stringBytes(image.path);
  return total;
}

/**
 * The memory the rows' images hold: the buffers they are views into, each counted once (a page a worker read holds
 * several images; an image of its own is its own buffer). What the run's memory budget counts them as.
 */
export function imageBufferBytes(rows: Iterable<ConversationalRow>): number {
  const buffers = new Set<ArrayBufferLike>();
  let total = 0;
  for (const row of rows) {
    for (const image of row.images) {
      if (buffers.has(image.bytes.buffer)) continue;
      buffers.add(image.bytes.buffer);
      total += image.bytes.buffer.byteLength;
    }
  }
  return total;
}
