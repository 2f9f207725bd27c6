// The Character-GRPO settings search of docs/grpo-settings.md: short runs that each evaluate the
// fixed held-out prompts from fixed seeds before the first update and after every epoch, and
// print one table row per setting (evaluation reward before, after, the rise, and its noise).
// Usage:
//   node dist/scripts/grpo-search.js --from <character model dir> --out <dir> --settings '<json>' [--settings ...]
//   node dist/scripts/grpo-search.js --micro --out <dir> --settings '<json>'
// Each --settings is a JSON object of GRPO config fields over the `project` preset (e.g.
// '{"lr":1e-4,"epochs":6}'). --micro starts from the micro test model of src/train/grpo-micro.ts.
import { mkdirSync, readFileSync, appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { evalRiseOf, trainGrpo, writeMicroGrpoModel } from '../src/train/index.js';
import type { GrpoConfigInput } from '../src/train/grpo.js';

interface Args { from: string | null; micro: boolean; out: string; settings: Record<string, unknown>[] }

function parseArgs(argv: string[]): Args {
  const a: Args = { from: null, micro: false, out: '', settings: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--micro') a.micro = true;
    else if (k === '--from') a.from = resolve(argv[++i] ?? '');
    else if (k === '--out') a.out = resolve(argv[++i] ?? '');
    else if (k === '--settings') a.settings.push(JSON.parse(argv[++i] ?? '{}') as Record<string, unknown>);
    else throw new Error(`grpo-search: unknown argument ${k} (see the usage at the top of scripts/grpo-search.ts)`);
  }
  if (!a.out) throw new Error('grpo-search: --out <dir> is needed');
  if (!a.micro && !a.from) throw new Error('grpo-search: --from <character model dir> or --micro is needed');
  if (a.settings.length === 0) a.settings.push({});
  return a;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  mkdirSync(a.out, { recursive: true });
  const from = a.micro ? writeMicroGrpoModel(join(a.out, 'micro-model')) : a.from!;
  for (const [i, s] of a.settings.entries()) {
    const out = join(a.out, `run-${Date.now()}-${i}`);
    const t0 = Date.now();
    await trainGrpo({ preset: 'project', from, out, saveEvery: 1000, ...s } as unknown as GrpoConfigInput, { progress: null, handleSigint: false, log: () => {} });
    const seconds = (Date.now() - t0) / 1000;
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const r = evalRiseOf(metrics);
    const row = { settings: s, ...r, seconds, curve: r.curve.map((v) => Number(v.toFixed(4))) };
    appendFileSync(join(a.out, 'search.jsonl'), JSON.stringify(row) + '\n');
    console.log(`${JSON.stringify(s)} | before ${r.before.toFixed(4)} | after ${r.after.toFixed(4)} | rise ${r.rise.toFixed(4)} | seed se ${r.seedSe.toFixed(4)} | paired se ${r.pairedSe.toFixed(4)} | epoch noise ${r.epochNoise.toFixed(4)} | rise/noise ${(r.rise / r.noise).toFixed(2)} | ${seconds.toFixed(0)} s | curve ${row.curve.join(' ')}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
