// Writing training samples as PNG through the data layer's image pipeline (fromChw, encodePng).
import { writeFileSync } from 'node:fs';
import { ops, scope, type Tensor } from '../torch/index.js';
import { encodePng, fromChw } from '../data/index.js';

/** A [3, H, W] image in [-1, 1] as PNG bytes. */
export async function pngOf(image: Tensor): Promise<Uint8Array> {
  const { data, h, w } = scope(() => {
    const [c, H, W] = image.shape as [number, number, number];
    if (c !== 3) throw new Error(`pngOf: expected 3 channels, got ${c}`);
    return { data: image.detach().to('float32').contiguous().dataSync() as Float32Array, h: H, w: W };
  });
  return encodePng(fromChw({ channels: 3, height: h, width: w, data }));
}

/** Tiles rows of equally sized [3, H, W] images in [-1, 1] into one PNG file. */
export async function writeImageGrid(path: string, rows: Tensor[][]): Promise<void> {
  const grid = scope(() => ops.cat(rows.map((r) => ops.cat(r.map((t) => t.detach().to('float32')), 2)), 1));
  try {
    writeFileSync(path, await pngOf(grid));
  } finally {
    grid.dispose();
  }
}
