// `unicharacter demo`: the main job, stage by stage. It runs every stage that exists today and
// says plainly which stages are not built yet, so its output never claims more than was done.
import { readFileSync, statSync } from 'node:fs';
import * as torch from '../torch/index.js';
import {
  TASKS, buildTask, importCard, loadSampleCharacter, readRoleScapeCharacter, formatWarning, type Character,
} from '../data/index.js';

export interface DemoOptions {
  quick: boolean;
  character?: string;
}

function stage(n: number, total: number, title: string): void {
  console.log(`\n[${n}/${total}] ${title}`);
}

function loadCharacter(path: string | undefined): Character {
  if (!path) return loadSampleCharacter().character;
  if (statSync(path).isDirectory()) {
    const { loaded, warnings } = readRoleScapeCharacter(path);
    for (const w of warnings) console.log(`  warning: ${formatWarning(w)}`);
    return loaded.character;
  }
  return importCard(readFileSync(path), { file: path }).character;
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const total = 3;
  stage(1, total, 'engine');
  const size = opts.quick ? 256 : 1024;
  const gflops = torch.scope(() => {
    const a = torch.randn([size, size]);
    const b = torch.randn([size, size]);
    a.matmul(b); // warm-up
    const reps = opts.quick ? 5 : 10;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < reps; k++) a.matmul(b).dispose();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return (2 * size ** 3 * reps) / s / 1e9;
  });
  console.log(`  libtorch ${torch.version()} on ${torch.cuda.isAvailable() ? 'CUDA' : 'CPU'}, ${torch.getNumThreads()} threads; ${size}x${size} fp32 matmul: ${gflops.toFixed(1)} GFLOPS`);

  stage(2, total, 'character');
  const c = loadCharacter(opts.character);
  console.log(`  ${c.names.display} (${c.category}): ${c.referenceImages.length} reference images, ${c.scenes.length + c.dialogue.length} dialogue scenes, ` +
    `${c.knowledgeQa.length} knowledge QA, ${c.vqa.length} VQA pairs, ${c.t2iPrompts.length} T2I prompts with checklists`);

  stage(3, total, 'training samples (method.md 2.1, 2.5)');
  for (const task of TASKS) {
    const plans = buildTask(c, task);
    console.log(`  ${task.padEnd(18)} ${plans.length} samples`);
  }

  console.log('\nNot built yet, so not run: tiny VAE, Unified-SFT, Character-GRPO, evaluation, and the server with');
  console.log('the web UI (issues 3 and 5-8). This demo grows as each lands.');
  return 0;
}
