// `unicharacter chat <character>`: a terminal chat with a customized character. Replies stream
// as they are decoded; with --images each reply also gets a picture, saved as a PNG whose path
// is printed.
import { createInterface } from 'node:readline/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CharacterModel } from '../character/index.js';

export interface ChatCliOptions {
  character: string;
  dataDir: string;
  images: boolean;
  temperature: number;
  maxTokens: number;
}

export async function runChat(o: ChatCliOptions): Promise<number> {
  const dir = join(o.dataDir, 'models', o.character);
  const model = await CharacterModel.load(dir);
  const name = model.character.names.display;
  const outDir = join(o.dataDir, 'chat-images', o.character);
  mkdirSync(outDir, { recursive: true });
  console.log(`Chatting with ${name} (${dir}). Empty line or Ctrl-D ends.`);
  if (model.character.opening) console.log(`${name}: ${model.character.opening}`);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const history: { role: string; text: string }[] = [];
  try {
    for (let turn = 1; ; turn++) {
      let line: string;
      try {
        line = (await rl.question('you: ')).trim();
      } catch {
        break; // input closed
      }
      if (!line) break;
      process.stdout.write(`${name}: `);
      const opts = { history, temperature: o.temperature, maxTokens: o.maxTokens, onText: (p: string) => process.stdout.write(p) };
      let reply: string;
      if (o.images) {
        const r = await model.rolePlay(line, opts);
        reply = r.reply;
        const path = join(outDir, `turn-${String(turn).padStart(3, '0')}.png`);
        writeFileSync(path, r.image);
        process.stdout.write(`\n  [image: ${path}]\n`);
      } else {
        reply = await model.reply(line, opts);
        process.stdout.write('\n');
      }
      history.push({ role: 'User', text: line }, { role: name, text: reply });
    }
  } finally {
    rl.close();
    model.dispose();
  }
  return 0;
}
