// Byte sizes as people write them (80GiB, 80GB, 512MiB) and the plan as a table.
import type { MemoryPlan } from './plan.js';

const UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** '80GiB' -> 85899345920; '80GB' -> 8e10; a bare number is bytes. Throws naming the input otherwise. */
export function parseBytes(s: string, options: { allowZero?: boolean } = {}): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  const unit = m ? (m[2] || 'b').toLowerCase() : '';
  if (!m || !(unit in UNITS)) throw new Error(`'${s}' is not a size (use e.g. 80GiB, 80GB, 512MiB or a byte count)`);
  const v = Number(m[1]) * UNITS[unit]!;
  if (!(v > 0) && !(options.allowZero && v === 0)) throw new Error(`'${s}' is not a positive size`);
  return v;
}

/** Bytes in GiB (or MiB below 1 GiB), 2 decimals. */
export function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(2)} MiB`;
}

const count = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(3)} B` : `${(n / 1e6).toFixed(2)} M`);

/** The per-device breakdown and verdict as markdown-style lines. */
export function planTable(p: MemoryPlan): string[] {
  const i = p.input;
  const c = p.counts;
  const pk = p.peak;
  const lens = i.pack.sampleLens;
  return [
    `model ${i.model.name}: ${count(c.trainable + c.frozen)} parameters (${count(c.trainable)} trained, ${count(c.frozen)} frozen) + VAE ${count(c.vae)}`,
    `mode ${i.mode}${i.mode === 'lora' ? ` (r ${i.lora!.r} on ${i.lora!.targets.join(', ')})` : ''}, precision ${i.precision}, ` +
      `${i.devices} device(s) of ${formatBytes(i.deviceMemory)}, shard ${i.shard}, activation checkpointing ${i.activationCheckpointing ? 'on' : 'off'}`,
    `pack: ${i.pack.tokens} tokens in ${lens.length} sample(s) of up to ${Math.max(...lens)}, ${i.pack.ceTokens} with CE, ${i.pack.latentTokens} latent`,
    '',
    `| per device (at the peak: ${pk.name}) | bytes |`,
    '|---|---:|',
    `| weights | ${formatBytes(p.weights)} |`,
    `| gradients | ${formatBytes(pk.gradients)} |`,
    `| optimizer state | ${formatBytes(p.optimizer)} |`,
    `| activations | ${formatBytes(pk.activations)} |`,
    `| workspace | ${formatBytes(pk.workspace)} |`,
    `| **total** | **${formatBytes(p.total)}** |`,
    ...(p.reserve ? [`| reserve (runtime, allocator slack) | ${formatBytes(p.reserve)} |`] : []),
    `| device memory | ${formatBytes(i.deviceMemory)} |`,
    '',
    p.fits
      ? `verdict: fits (${formatBytes(i.deviceMemory - p.total - p.reserve)} to spare per device)`
      : `verdict: does not fit (${formatBytes(p.total + p.reserve - i.deviceMemory)} over per device)`,
  ];
}
