// The picture of a card whose character has no avatar and no reference image (docs/ecosystem.md
// 1.2): a 400 x 600 portrait (SillyTavern's avatar size) in a colour derived from the name, with a
// head-and-shoulders silhouette, so that a PNG card can always be written.
import { createHash } from 'node:crypto';

export const PLACEHOLDER_SIZE = { width: 400, height: 600 } as const;

/** Hue in degrees from the name's SHA-256: the same name, the same colour. */
export function placeholderHue(name: string): number {
  return createHash('sha256').update(name, 'utf8').digest().readUInt16BE(0) % 360;
}

export async function placeholderAvatar(name: string): Promise<Uint8Array> {
  const hue = placeholderHue(name);
  const { width, height } = PLACEHOLDER_SIZE;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<rect width="100%" height="100%" fill="hsl(${hue},45%,40%)"/>
<circle cx="200" cy="230" r="90" fill="hsl(${hue},45%,75%)"/>
<ellipse cx="200" cy="560" rx="170" ry="190" fill="hsl(${hue},45%,75%)"/>
</svg>`;
  const sharp = (await import('sharp')).default;
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}
