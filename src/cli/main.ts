#!/usr/bin/env node
// The `unicharacter` command. Each subcommand is a small function over the layers below;
// `unicharacter help` lists them.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runDemo } from './demo.js';
import { dataStats, dataValidate } from '../data/index.js';
import { TRAIN_HELP } from './train-help.js';
import { CHECKLIST_PROBE_HELP } from './checklist-probe.js';

const SERVE_HELP = `  serve [--host H] [--port P] [--data-dir D] [--api-key K] [--allow-remote] [--keep-stateless-chats] [--image-links] [--max-batch N]
        [--prefix-cache-mib M]
                                       the OpenAI-compatible server (default 127.0.0.1:8000, data in
                                       .unicharacter/; the key may also come from UNICHARACTER_API_KEY).
                                       A host other machines can reach (0.0.0.0, ::, a network
                                       address) needs a key, or --allow-remote to serve without one;
                                       --keep-stateless-chats stores requests without chat_id as chats,
                                       --image-links puts reply images into content as markdown links;
                                       --max-batch N: concurrent replies of one model decoded together
                                       (default 16; 1 decodes one request at a time);
                                       --prefix-cache-mib M: KV rows of recent prompts each loaded
                                       model keeps for reuse (default 32; 0 keeps none) (docs/serving.md)`;

const CHAT_HELP = `  chat <character> [--data-dir D] [--no-images] [--thinking] [--temperature T] [--max-tokens N]
                                       talk to a customized character in the terminal; images are
                                       saved under <data-dir>/chat-images/ and their paths printed;
                                       a line "/image <file> [text]" shows the character a picture;
                                       --thinking plans each image first (the official
                                       <think>/<gen> plan, printed after the reply as "plan:";
                                       docs/method.md 4.3), not with --no-images
                                       (defaults: temperature 0.7, max tokens 200; docs/serving.md)`;

const DEMO_HELP = `  demo [--quick] [--character <dir|card>] [--out <dir>] [--port P]
                                       the main job: tiny VAE, Unified-SFT, Character-GRPO,
                                       evaluation, then the server with the web UI and a first
                                       exchange, on a character (default: the sample character
                                       "Tessel" in samples/; or a RoleScape-20 character folder or
                                       a card file). Runs go to <out>/<character>/{full|quick}
                                       (default runs/demo); finished stages are reused and an
                                       interrupted one (Ctrl-C, a killed process) resumes from its
                                       latest checkpoint by itself. --quick is a reduced run (CI
                                       uses it); the full run keeps serving on port 8000 until Ctrl-C`;

const DATA_HELP = `  data validate <dir>                  read a RoleScape-20 style folder (a split such as train/, or a
                                       root holding train/ and test/); print quirks as warnings and
                                       errors with file, record and field; exit 1 on errors
  data stats <dir>                     per-character counts of a RoleScape-20 style folder`;

const LAUNCH_HELP = `  launch --nproc N [--nnodes M --node-rank R --master-addr A] [--master-port P] <command | script.js> [args...]
                                       run a unicharacter command (e.g. train sft ...) or a Node
                                       script in N processes with torchrun's environment (MASTER_ADDR,
                                       MASTER_PORT, RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
                                       GROUP_RANK, GROUP_WORLD_SIZE, ROLE_RANK, ROLE_WORLD_SIZE);
                                       several machines: run it on each with --nnodes M and its
                                       --node-rank R (0..M-1); node R runs global ranks R*N..R*N+N-1,
                                       --master-addr is node 0's address (default 127.0.0.1), the
                                       port defaults to a free one on one node, 29500 on several.
                                       Output lines are prefixed with [rank i] (the global rank)`;

const EXPORT_HELP = `  export --run <dir> --out <dir> [--checkpoint step-N|<dir>] [--character sample|<dir>] [--no-character]
                                       consolidate a sharded run's checkpoint (shards/rank-R.safetensors,
                                       any world size; default the latest) into <out>/model.safetensors
                                       (the published single-file layout, BAGEL key names) and, for a
                                       one-character run (or --character), the character model folder
                                       <out>/character; LoRA runs also get <out>/adapter.safetensors
                                       (docs/sharding.md 6)`;

const ENGINE_HELP = `  engine                               the libtorch build in use: version, threads, CUDA`;

const HELP = `unicharacter <command> [options]

Commands:
${DEMO_HELP}
${DATA_HELP}
${TRAIN_HELP}
${LAUNCH_HELP}
${EXPORT_HELP}
  eval --run [label=]<dir> [--run ...] [--character C] [--split <dir>] [--out <dir>] [options]
                                       the RoleScape-20 style benchmark on character model folders
                                       (see \`unicharacter eval --help\`)
${SERVE_HELP}
${CHAT_HELP}
  plan --model <preset|file> --tokens-per-pack T [--mode full|lora] [--precision P] [--devices N]
       [--device-memory 80GiB] [--activation-checkpointing] [--shard none|grad|full] [...]
                                       per-device memory of a training step and whether it fits
                                       (see \`unicharacter plan --help\`, docs/planner.md); exit 3
                                       when it does not fit
${CHECKLIST_PROBE_HELP}
${ENGINE_HELP}
  help                                 this text
`;

/** `--help` / `-h` among a command's own arguments (before a `--`; for launch only first, since
 * what follows belongs to the launched command). */
function asksHelp(command: string, rest: string[]): boolean {
  const own = command === 'launch' ? rest.slice(0, 1) : rest.slice(0, rest.includes('--') ? rest.indexOf('--') : rest.length);
  return own.includes('--help') || own.includes('-h');
}

/** The lines of a help text from the entry that starts with `start` up to the next entry. */
function entry(text: string, start: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`  ${start}`));
  if (i < 0) return text;
  let j = i + 1;
  while (j < lines.length && !/^  \S/.test(lines[j]!)) j++;
  return lines.slice(i, j).join('\n');
}

/** Help of the commands that have no parser of their own for it (eval, plan, serve and chat do). */
function commandHelp(command: string, rest: string[]): string | undefined {
  const sub = rest.find((a) => !a.startsWith('-'));
  const training = TRAIN_HELP.slice(TRAIN_HELP.indexOf('  Precision and memory'));
  switch (command) {
    case 'demo':
      return DEMO_HELP;
    case 'data':
      return sub === 'validate' || sub === 'stats' ? entry(DATA_HELP, `data ${sub}`) : DATA_HELP;
    case 'train':
      return sub === 'vae' || sub === 'sft' || sub === 'base' || sub === 'grpo' ? `${entry(TRAIN_HELP, `train ${sub}`)}\n${training}` : TRAIN_HELP;
    case 'customize':
      return `${entry(TRAIN_HELP, 'customize')}\n${training}`;
    case 'launch':
      return LAUNCH_HELP;
    case 'engine':
      return ENGINE_HELP;
    case 'export':
      return EXPORT_HELP;
    case 'checklist-probe':
      return CHECKLIST_PROBE_HELP;
    default:
      return undefined;
  }
}

const LAUNCH_FLAGS = ['nproc', 'nnodes', 'node-rank', 'master-addr', 'master-port'] as const;

/** launch's own flags (`--flag v` or `--flag=v`, before the command), or what is wrong with them. */
function parseLaunchFront(rest: string[]): string | {
  options: { nproc: number; nnodes: number; nodeRank: number; masterAddr?: string; masterPort?: number }; positionals: string[];
} {
  const v: Partial<Record<(typeof LAUNCH_FLAGS)[number], string>> = {};
  let k = 0;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(rest[k] ?? '');
    const flag = LAUNCH_FLAGS.find((f) => f === m?.[1]);
    if (!m || !flag) break;
    v[flag] = m[2] ?? rest[++k];
    if (v[flag] === undefined) return `--${flag} needs a value`;
    k++;
  }
  const int = (name: string, text: string | undefined, dflt: number, min: number): number | string => {
    const n = text === undefined ? dflt : Number(text);
    return Number.isInteger(n) && n >= min ? n : `--${name} must be an integer >= ${min}, got '${text}'`;
  };
  const nproc = int('nproc', v.nproc ?? '', 0, 1);
  const nnodes = int('nnodes', v.nnodes, 1, 1);
  const nodeRank = int('node-rank', v['node-rank'], 0, 0);
  const port = v['master-port'] === undefined ? undefined : int('master-port', v['master-port'], 0, 1);
  for (const e of [nproc, nnodes, nodeRank, port]) if (typeof e === 'string') return e;
  if ((nodeRank as number) >= (nnodes as number)) return `--node-rank ${nodeRank} must be below --nnodes ${nnodes}`;
  if ((nnodes as number) > 1 && v['master-addr'] === undefined) return `--nnodes ${nnodes} needs --master-addr (the address of node 0, which every node must reach)`;
  if (typeof port === 'number' && port > 65535) return `--master-port must be a port number, got '${port}'`;
  const positionals = rest.slice(k);
  if (positionals.length === 0) return 'no command or script to run';
  return {
    options: {
      nproc: nproc as number, nnodes: nnodes as number, nodeRank: nodeRank as number,
      ...(v['master-addr'] !== undefined ? { masterAddr: v['master-addr'] } : {}), ...(port !== undefined ? { masterPort: port as number } : {}),
    },
    positionals,
  };
}

/** Each command's runner over its own arguments (after the command name). */
const COMMANDS: Record<string, (rest: string[]) => Promise<number>> = {
  demo: demoCommand,
  data: dataCommand,
  train: async (rest) => (await import('./train.js')).trainCommand(rest),
  customize: async (rest) => (await import('./train.js')).customizeCommand(rest),
  launch: launchCommand,
  export: exportCommand,
  eval: async (rest) => (await import('../eval/index.js')).evalCommand(rest),
  serve: serveCommand,
  chat: chatCommand,
  plan: async (rest) => (await import('./plan.js')).planCommand(rest),
  engine: engineCommand,
  'checklist-probe': async (rest) => (await import('./checklist-probe.js')).checklistProbeCommand(rest),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const help = command !== undefined && asksHelp(command, rest) ? commandHelp(command, rest) : undefined;
  if (help !== undefined) {
    console.log(`unicharacter${help.slice(1)}`);
    return 0;
  }
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(HELP);
    return 0;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (run) return run(rest);
  console.error(`unknown command '${command}'\n\n${HELP}`);
  return 2;
}

async function demoCommand(rest: string[]): Promise<number> {
  const { values } = parseArgs({
    args: rest,
    options: {
      quick: { type: 'boolean', default: false },
      character: { type: 'string' },
      out: { type: 'string', default: 'runs/demo' },
      port: { type: 'string' },
    },
  });
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new Error(`--port must be a port number, got '${values.port}'`);
  return runDemo({ quick: values.quick ?? false, character: values.character, out: values.out, port });
}

async function dataCommand(rest: string[]): Promise<number> {
  const [sub, dir, ...extra] = rest;
  if (!dir || extra.length > 0 || (sub !== 'validate' && sub !== 'stats')) {
    console.error('usage: unicharacter data validate|stats <dir>');
    return 2;
  }
  if (sub === 'validate') return dataValidate(dir).exitCode;
  await dataStats(dir);
  return 0;
}

async function launchCommand(rest: string[]): Promise<number> {
  // Everything after the script belongs to the script, so only the front is parsed here.
  const front = parseLaunchFront(rest);
  if (typeof front === 'string') {
    console.error(`launch: ${front}\nusage: unicharacter launch --nproc N [--nnodes M --node-rank R --master-addr A] [--master-port P] <command | script.js> [args...]`);
    return 2;
  }
  const { launch } = await import('../torch/index.js');
  // `launch --nproc 2 train sft ...` runs a unicharacter command; a .js/.mjs path runs that script.
  const { positionals } = front;
  const isScript = /\.(c|m)?js$/.test(positionals[0]!);
  const script = isScript ? positionals[0]! : fileURLToPath(import.meta.url);
  const args = isScript ? positionals.slice(1) : positionals;
  const result = await launch({ ...front.options, script, args });
  if (!result.ok) console.error(`launch: ${result.error}`);
  return result.ok ? 0 : 1;
}

async function exportCommand(rest: string[]): Promise<number> {
  const { values } = parseArgs({
    args: rest,
    options: {
      run: { type: 'string' }, out: { type: 'string' }, checkpoint: { type: 'string' },
      character: { type: 'string' }, 'no-character': { type: 'boolean', default: false },
    },
  });
  if (!values.run || !values.out) {
    console.error('usage: unicharacter export --run <dir> --out <dir> [--checkpoint step-N|<dir>] [--character sample|<dir>] [--no-character]');
    return 2;
  }
  if (values.character !== undefined && values['no-character']) throw new Error('--character and --no-character exclude each other');
  const { exportShardedRun } = await import('../train/index.js');
  const r = exportShardedRun({
    run: values.run, out: values.out, noCharacter: values['no-character']!,
    ...(values.checkpoint !== undefined ? { checkpoint: values.checkpoint } : {}), ...(values.character !== undefined ? { character: values.character } : {}),
  });
  console.log(`step ${r.step} (${r.checkpoint})\nweights: ${r.modelPath}${r.adapterPath ? `\nadapter: ${r.adapterPath}` : ''}${r.characterModelPath ? `\ncharacter model: ${r.characterModelPath}` : ''}`);
  return 0;
}

async function serveCommand(rest: string[]): Promise<number> {
  const { values } = parseArgs({
    args: rest,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8000' },
      'data-dir': { type: 'string', default: '.unicharacter' },
      'api-key': { type: 'string' },
      'keep-stateless-chats': { type: 'boolean', default: false },
      'image-links': { type: 'boolean', default: false },
      'allow-remote': { type: 'boolean', default: false },
      'max-batch': { type: 'string', default: '16' },
      'prefix-cache-mib': { type: 'string', default: '32' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(`unicharacter${SERVE_HELP.slice(1)}`);
    return 0;
  }
  const maxBatch = Number(values['max-batch']);
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`--max-batch must be an integer >= 1, got '${values['max-batch']}'`);
  const prefixMiB = Number(values['prefix-cache-mib']);
  if (!(Number.isFinite(prefixMiB) && prefixMiB >= 0)) throw new Error(`--prefix-cache-mib must be a number >= 0, got '${values['prefix-cache-mib']}'`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number, got '${values.port}'`);
  const { runServe } = await import('./serve.js');
  const apiKey = values['api-key'] ?? process.env.UNICHARACTER_API_KEY;
  return runServe({
    host: values.host!, port, dataDir: values['data-dir']!, allowRemote: values['allow-remote']!, ...(apiKey ? { apiKey } : {}),
    chats: { keepStateless: values['keep-stateless-chats']!, imageLinks: values['image-links']! }, maxBatch, prefixCacheBytes: Math.floor(prefixMiB * 2 ** 20),
  });
}

async function chatCommand(rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string', default: '.unicharacter' },
      'no-images': { type: 'boolean', default: false },
      thinking: { type: 'boolean', default: false },
      temperature: { type: 'string', default: '0.7' },
      'max-tokens': { type: 'string', default: '200' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(`unicharacter${CHAT_HELP.slice(1)}`);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error('usage: unicharacter chat <character> [--data-dir D] [--no-images] [--thinking] [--temperature T] [--max-tokens N]');
    return 2;
  }
  const temperature = Number(values.temperature);
  if (!(temperature >= 0 && temperature <= 2)) throw new Error(`--temperature must be a number from 0 to 2, got '${values.temperature}'`);
  const maxTokens = Number(values['max-tokens']);
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw new Error(`--max-tokens must be a positive integer, got '${values['max-tokens']}'`);
  if (values.thinking && values['no-images']) throw new Error("--thinking plans each reply's image: it cannot be used with --no-images");
  const { runChat } = await import('./chat.js');
  return runChat({ character: positionals[0]!, dataDir: values['data-dir']!, images: !values['no-images'], thinking: values.thinking!, temperature, maxTokens });
}

async function engineCommand(): Promise<number> {
  const torch = await import('../torch/index.js');
  console.log(`libtorch ${torch.version()}, ${torch.getNumThreads()} intra-op threads, CUDA ${torch.cuda.isAvailable() ? `available (${torch.cuda.deviceCount()} devices)` : 'not available'}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? `error: ${err.message}` : err);
    process.exit(1);
  },
);
