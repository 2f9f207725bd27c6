// Synthetic images for the caption-based reward tests: one colour on top, another below, so an
// image's layout differs from its colour histogram alone.
import type { ChwImage } from '../../src/data/index.js';

export type Rgb = [number, number, number];

export const WHITE: Rgb = [1, 1, 1];
export const BLUE: Rgb = [0.1, 0.2, 0.9];
export const GREEN: Rgb = [0.1, 0.7, 0.1];
export const DARK: Rgb = [0.05, 0.05, 0.1];

/** A side x side image (values in [-1, 1]) whose top half is `top` and bottom half `bottom` (RGB in [0, 1]). */
export function twoTone(top: Rgb, bottom: Rgb = top, side = 16): ChwImage {
  const data = new Float32Array(3 * side * side);
  for (let c = 0; c < 3; c++) for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) data[c * side * side + y * side + x] = 2 * (y < side / 2 ? top : bottom)[c]! - 1;
  return { channels: 3, height: side, width: side, data };
}
