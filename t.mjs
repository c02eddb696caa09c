import sharp from 'sharp';
sharp.concurrency(1); sharp.cache(false);
const w = 640, h = 480;
const px = Buffer.alloc(w*h*3); let n = 12345;
for (let i = 0; i < px.length; i++) { n ^= n << 13; n ^= n >>> 17; n ^= n << 5; px[i] = 128 + ((n & 63) - 32) + ((i / 3 % w) / 5); }
const b = await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
const big = await sharp(px, { raw: { width: w, height: h, channels: 3 } }).resize(2560, 1920).jpeg({ quality: 90 }).toBuffer();
for (const [name, img] of [['640', b], ['2560', big]]) for (const [label, fn] of [
    ['full', () => sharp(img).raw().toBuffer()],
    ['resize w/8 lanczos', () => sharp(img).resize({ width: (name === '640' ? 80 : 320) }).raw().toBuffer()],
    ['resize w/8 no-fast', () => sharp(img).resize({ width: (name === '640' ? 80 : 320), fastShrinkOnLoad: false }).raw().toBuffer()],
    ['thumbnail-ish extract', () => sharp(img).extract({ left: 0, top: 0, width: 8, height: 8 }).raw().toBuffer()],
  ]) {
    await fn(); const t = performance.now(); for (let i = 0; i < 20; i++) await fn(); console.log(name, label.padEnd(24), ((performance.now() - t) / 20).toFixed(2), 'ms');
}
