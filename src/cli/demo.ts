// `unicharacter demo`: the main job. From a character (the sample character by default) to a
// customized model you can talk to: Unified-SFT (with the tiny VAE stage first), Character-GRPO,
// evaluation against the model before customization, then the server with the web UI and a
// first exchange. Each stage prints its progress; a second run reuses finished stages and resumes
// an interrupted one from its latest checkpoint (Ctrl-C or a killed process alike), saying so.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as torch from '../torch/index.js';
import { Bagel } from '../model/index.js';
import { exportCard, importCard, loadSampleCharacter, readRoleScapeCharacter, formatWarning, type Character } from '../data/index.js';
import {
  DEFAULT_GRPO, readLatestCheckpoint, tinySftConfig, trainGrpo, trainSft, type SftConfigInput,
} from '../train/index.js';
import { demoGrpoSettings, grpoEvalCurveLines } from './demo-grpo.js';
import { CharacterModel, CHARACTER_MODEL_FILES } from '../character/index.js';
import { ModelChatEngine, startServer } from '../serve/index.js';
import { runDemoEval } from './demo-eval.js';

export interface DemoOptions {
  quick: boolean;
  character?: string;
  /** Root of the demo's runs (default runs/demo). */
  out?: string;
  port?: number;
}

interface Stage {
  name: string;
  seconds: number;
  reused: boolean;
}

function loadCharacter(path: string | undefined): { character: Character; source: string[] | null } {
  if (!path) return { character: loadSampleCharacter().character, source: ['sample'] };
  if (!existsSync(path)) throw new Error(`--character ${path}: no such file or folder (a RoleScape-20 character folder, or a card: .json, .png or .charx)`);
  if (statSync(path).isDirectory()) {
    const { loaded, warnings } = readRoleScapeCharacter(resolve(path), { split: 'train' });
    for (const w of warnings) console.log(`  warning: ${formatWarning(w)}`);
    return { character: loaded.character, source: [resolve(path)] };
  }
  const { character, warnings } = importCard(readFileSync(path), { file: path });
  for (const w of warnings) console.log(`  warning: ${w}`);
  return { character, source: null };
}

const hasModel = (dir: string): boolean => existsSync(join(dir, CHARACTER_MODEL_FILES.manifest));

/** What an earlier, interrupted SFT run left, in words (its checkpoints decide where it goes on). */
function sftResumePoint(run: string): string {
  const sft = readLatestCheckpoint(run);
  if (sft) return `resuming the interrupted run from SFT step ${sft.step}`;
  if (existsSync(join(run, 'vae', 'ae.safetensors'))) return 'resuming the interrupted run: the VAE stage had finished, SFT starts from step 0';
  const vae = readLatestCheckpoint(join(run, 'vae'));
  if (vae) return `resuming the interrupted VAE stage from step ${vae.step}`;
  return 'resuming the interrupted run (it had saved no checkpoint yet: starting from step 0)';
}

/** Numbered stage headers, and the time of each stage for timings.json. */
class StageLog {
  readonly stages: Stage[] = [];
  private n = 0;

  constructor(private readonly total: number) {}

  /** A stage that always runs (no earlier result to reuse): its header only. */
  header(name: string, first = false): void {
    this.n++;
    console.log(`${first ? '' : '\n'}[${this.n}/${this.total}] ${name}`);
  }

  /** A stage whose result an earlier run may have left (`done`): reused then, else run and timed. */
  async run(name: string, done: () => boolean, work: () => Promise<void>): Promise<void> {
    this.header(name);
    const t0 = Date.now();
    if (done()) {
      console.log('  finished in an earlier run: reusing it');
      this.stages.push({ name, seconds: 0, reused: true });
      return;
    }
    await work();
    const seconds = (Date.now() - t0) / 1000;
    this.stages.push({ name, seconds, reused: false });
    console.log(`  done in ${seconds.toFixed(1)} s`);
  }
}

/** Where each stage of one demo run keeps its results. */
interface DemoPaths {
  root: string;
  sftRun: string;
  sftModel: string;
  grpoRun: string;
  grpoModel: string;
  untrained: string;
  evalDir: string;
}

type Server = Awaited<ReturnType<typeof startServer>>;

export async function runDemo(opts: DemoOptions): Promise<number> {
  const started = Date.now();
  const log = new StageLog(6);
  // 1. Engine and character.
  log.header('engine and character', true);
  const { character, source, paths } = openDemo(opts);
  // 2. Unified-SFT, with the tiny VAE stage first (docs/method.md 2).
  await log.run('Unified-SFT (tiny VAE stage, then 0.25 CE + 1.0 MSE)', () => hasModel(paths.sftModel), () => sftStage(opts, character, source, paths));
  // 3. Character-GRPO on the generation expert (docs/method.md 3).
  await log.run('Character-GRPO (SDE-window rollouts, group-relative rewards)', () => hasModel(paths.grpoModel), () => grpoStage(opts, paths));
  for (const line of grpoEvalCurveLines(paths.grpoRun)) console.log(`  ${line}`);
  // 4. Evaluation: the model before customization, SFT, and SFT + GRPO on the same tests.
  await log.run('evaluation (before customization, SFT, SFT + GRPO)', () => existsSync(join(paths.evalDir, 'report.md')), () => evalStage(opts, character, paths));
  // 5. Serving: the character and its model in the server's data folder.
  log.header('server with the web UI');
  const dataDir = join(paths.root, 'server');
  const { server, id } = await serveDemo(opts, character, dataDir, paths.grpoModel);
  // 6. A first exchange through the API: a reply, then an image of the scene.
  log.header('first exchange');
  const t0 = Date.now();
  await firstExchange(opts, character, server, id, paths.root);
  log.stages.push({ name: 'first exchange', seconds: (Date.now() - t0) / 1000, reused: false });
  writeTimings(opts, paths.root, started, log.stages);
  if (opts.quick) {
    await server.close();
    return 0;
  }
  console.log(`\nThe server keeps running: open ${server.url}/ in a browser, or \`unicharacter chat ${id} --data-dir ${dataDir}\` in another terminal. Ctrl-C stops it.`);
  await new Promise<void>((r) => process.once('SIGINT', () => r()));
  await server.close();
  return 0;
}

/** The engine, the character and the run folders (one per character and mode). */
function openDemo(opts: DemoOptions): { character: Character; source: string[] | null; paths: DemoPaths } {
  console.log(`  libtorch ${torch.version()} on ${torch.cuda.isAvailable() ? 'CUDA' : 'CPU'}, ${torch.getNumThreads()} threads`);
  const { character, source } = loadCharacter(opts.character);
  console.log(`  ${character.names.display} (${character.category}): ${character.referenceImages.length} reference images, ` +
    `${character.scenes.length + character.dialogue.length} dialogue scenes, ${character.knowledgeQa.length} knowledge QA, ` +
    `${character.vqa.length} VQA pairs, ${character.t2iPrompts.length} T2I prompts with checklists`);
  const root = resolve(opts.out ?? 'runs/demo', character.id, opts.quick ? 'quick' : 'full');
  mkdirSync(root, { recursive: true });
  console.log(`  runs in ${root}`);
  const sftRun = join(root, 'sft');
  const grpoRun = join(root, 'grpo');
  const paths = {
    root, sftRun, sftModel: join(sftRun, 'character'), grpoRun, grpoModel: join(grpoRun, 'model'),
    untrained: join(root, 'untrained'), evalDir: join(root, 'eval'),
  };
  return { character, source, paths };
}

async function sftStage(opts: DemoOptions, character: Character, source: string[] | null, { sftRun }: DemoPaths): Promise<void> {
  const sftConfig: SftConfigInput = opts.quick
    ? { vae: { steps: 40, saveEvery: 10 }, data: { imageSize: 32, vitImageSize: 28 }, totalSteps: 30, saveEvery: 15, sampling: { every: 30, maxTokens: 16, numTimesteps: 8 } }
    : { vae: { steps: 300 }, totalSteps: 600, saveEvery: 200, sampling: { every: 200, maxTokens: 48, numTimesteps: 12 } };
  if (source) (sftConfig as { data?: object }).data = { ...(sftConfig.data ?? {}), characters: source };
  const resume = existsSync(join(sftRun, 'config.json'));
  if (resume) console.log(`  ${sftResumePoint(sftRun)} (${sftRun})`);
  const r = await trainSft(tinySftConfig(sftConfig), {
    runDir: sftRun, resume, characters: source ? undefined : [character],
  });
  if (r.vaeStage?.interrupted) throw new Error(`the VAE stage stopped at step ${r.vaeStage.step} (checkpoint saved); run the demo again to continue`);
  if (r.interrupted) throw new Error(`SFT stopped at step ${r.step} (checkpoint saved); run the demo again to continue`);
  if (!r.characterModelPath) throw new Error('SFT finished without a character model folder');
}

async function grpoStage(opts: DemoOptions, { sftModel, grpoRun }: DemoPaths): Promise<void> {
  if (existsSync(grpoRun) && !existsSync(join(grpoRun, 'checkpoints'))) rmSync(grpoRun, { recursive: true, force: true });
  const resume = existsSync(join(grpoRun, 'checkpoints'));
  if (resume) {
    const latest = readLatestCheckpoint(grpoRun);
    console.log(`  resuming the interrupted run from ${latest ? `epoch ${latest.step}` : 'its start (no checkpoint yet)'} (${grpoRun})`);
  }
  const g = await trainGrpo({
    // The 'project' preset: its CPU-size learning settings (docs/grpo-settings.md), and the demo's
    // few prompts and small groups do not fill the reference's 8 x 6 sampling batches.
    ...DEFAULT_GRPO, preset: 'project', from: sftModel, out: grpoRun, ...demoGrpoSettings(opts.quick),
  }, { resume });
  if (g.interrupted) throw new Error(`Character-GRPO stopped at epoch ${g.step} (checkpoint saved); run the demo again to continue`);
}

async function evalStage(opts: DemoOptions, character: Character, { sftModel, grpoModel, untrained, evalDir }: DemoPaths): Promise<void> {
  if (!hasModel(untrained)) {
    // Same tokenizer, VAE and sizes as the customized model, freshly initialised weights.
    const sft = await CharacterModel.load(sftModel);
    torch.manualSeed(1234);
    const fresh = new CharacterModel(sft.character, new Bagel(sft.model.config), sft.vae, sft.tokenizer, { ...sft.manifest, provenance: { stage: 'untrained' } });
    fresh.save(untrained);
    fresh.model.dispose();
    sft.dispose();
  }
  await runDemoEval({
    character, out: evalDir, quick: opts.quick,
    runs: [
      { label: 'before customization', modelDir: untrained },
      { label: 'SFT', modelDir: sftModel },
      { label: 'SFT + GRPO', modelDir: grpoModel },
    ],
  });
  console.log(`  report: ${join(evalDir, 'report.md')}`);
}

/** Starts the server, imports the character (once) and puts the customized model beside it. */
async function serveDemo(opts: DemoOptions, character: Character, dataDir: string, grpoModel: string): Promise<{ server: Server; id: string }> {
  const engine = new ModelChatEngine(join(dataDir, 'models'));
  const wanted = opts.port ?? (opts.quick ? 0 : 8000);
  const server = await startServer({ dataDir, engine, port: wanted }).catch((e: NodeJS.ErrnoException) => {
    // Port 8000 taken by something else: any free port serves the demo as well.
    if (e.code !== 'EADDRINUSE' || opts.port !== undefined) throw e;
    console.log(`  port ${wanted} is in use; using a free port instead`);
    return startServer({ dataDir, engine, port: 0 });
  });
  let id = character.id;
  const listed = (await (await fetch(`${server.url}/v1/characters`)).json()) as { data: { id: string; name: string }[] };
  const existing = listed.data.find((c) => c.name === character.names.display);
  if (existing) id = existing.id;
  else {
    const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(await exportCard(character, 'json', { heldOut: 'include' })) });
    if (res.status !== 201) throw new Error(`importing the character into the server failed: ${await res.text()}`);
    id = ((await res.json()) as { id: string }).id;
  }
  cpSync(grpoModel, join(dataDir, 'models', id), { recursive: true });
  console.log(`  serving on ${server.url}  (web UI at ${server.url}/, OpenAI-compatible API at ${server.url}/v1, model '${id}')`);
  return { server, id };
}

/** One chat completion asking for text and an image; the image is saved beside the runs. */
async function firstExchange(opts: DemoOptions, character: Character, server: Server, id: string, root: string): Promise<void> {
  const user = 'Hello! Where are you headed today?';
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, messages: [{ role: 'user', content: user }], modalities: ['text', 'image'], max_tokens: opts.quick ? 24 : 64, temperature: 0.7, seed: 7 }),
  });
  const body = (await res.json()) as { choices?: { message: { content: string; images?: { image_url: { url: string } }[] } }[]; error?: { message: string } };
  if (!res.ok || !body.choices) throw new Error(`the first exchange failed: ${body.error?.message ?? res.status}`);
  const message = body.choices[0]!.message;
  console.log(`  you: ${user}`);
  console.log(`  ${character.names.display}: ${message.content}`);
  const url = message.images?.[0]?.image_url.url;
  if (url) {
    const bytes = url.startsWith('data:') ? Buffer.from(url.slice(url.indexOf(',') + 1), 'base64') : Buffer.from(await (await fetch(server.url + url)).arrayBuffer());
    const path = join(root, 'first-exchange.png');
    writeFileSync(path, bytes);
    console.log(`  image: ${path}`);
  }
}

function writeTimings(opts: DemoOptions, root: string, started: number, stages: Stage[]): void {
  const timings = { quick: opts.quick, totalSeconds: (Date.now() - started) / 1000, stages };
  writeFileSync(join(root, 'timings.json'), JSON.stringify(timings, null, 2) + '\n');
  console.log(`\nStage times (s): ${stages.map((s) => `${s.name.split(' (')[0]} ${s.reused ? 'reused' : s.seconds.toFixed(1)}`).join(', ')}; total ${timings.totalSeconds.toFixed(1)}`);
}
