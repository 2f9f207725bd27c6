// `unicharacter chat <character>`: a terminal chat with a customized character. Replies stream
// as they are decoded; the conversation goes through the server's chat template and prompt
// budget (docs/serving.md 1-2), so old turns are cut when the context is full. A line
// "/image <file> [text]" shows the character a picture (the ViT understanding path). With
// --images each reply also gets a picture, saved as a PNG whose path is printed; with --thinking
// the picture is planned first (docs/method.md 4.3 step 2) and the plan printed after the reply.
import { createInterface } from 'node:readline/promises';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CharacterModel, ChatRequestError, type ChatPart, type ChatTurn } from '../character/index.js';

export interface ChatCliOptions {
  character: string;
  dataDir: string;
  images: boolean;
  /** Plan each image first (needs images); the plan is printed as "  plan: ..." after the reply. */
  thinking: boolean;
  temperature: number;
  maxTokens: number;
}

/** A typed line as a user turn: "/image <file> [text]" attaches the file's image. */
export function userTurnOf(line: string, readImage: (path: string) => Uint8Array = (p) => new Uint8Array(readFileSync(p))): ChatTurn {
  const m = /^\/image\s+(\S+)\s*([\s\S]*)$/.exec(line);
  if (!m) return { role: 'user', content: [{ text: line }] };
  const content: ChatPart[] = [{ image: readImage(m[1]!) }];
  if (m[2]) content.push({ text: m[2] });
  return { role: 'user', content };
}

export async function runChat(o: ChatCliOptions): Promise<number> {
  const dir = join(o.dataDir, 'models', o.character);
  const model = await CharacterModel.load(dir);
  const name = model.character.names.display;
  const outDir = join(o.dataDir, 'chat-images', o.character);
  mkdirSync(outDir, { recursive: true });
  console.log(`Chatting with ${name} (${dir}). Empty line or Ctrl-D ends; "/image <file> [text]" shows ${name} a picture.`);
  if (model.character.opening) console.log(`${name}: ${model.character.opening}`);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const turns: ChatTurn[] = [];
  try {
    for (let turn = 1; ; turn++) {
      let line: string;
      try {
        line = (await rl.question('you: ')).trim();
      } catch {
        break; // input closed
      }
      if (!line) break;
      let user: ChatTurn;
      try {
        user = userTurnOf(line);
      } catch (e) {
        console.log(`  [${(e as Error).message}]`);
        continue;
      }
      process.stdout.write(`${name}: `);
      try {
        let planStarted = false;
        const thinking = o.thinking && o.images ? {
          onText: (p: string) => {
            if (!planStarted) process.stdout.write('\n  plan: ');
            planStarted = true;
            process.stdout.write(p);
          },
        } : undefined;
        const r = await model.chat([...turns, user], {
          temperature: o.temperature, maxTokens: o.maxTokens, image: o.images, onText: (p) => process.stdout.write(p), ...(thinking ? { thinking } : {}),
        });
        process.stdout.write('\n');
        if (r.plan?.missing.length) console.log(`  [the plan has no complete ${r.plan.missing.map((t) => `<${t}>...</${t}>`).join(' or ')}: that part of the image prompt is empty]`);
        if (r.droppedTurns > 0) console.log(`  [the ${r.droppedTurns} oldest turns no longer fit the context and were left out]`);
        if (r.image) {
          const path = join(outDir, `turn-${String(turn).padStart(3, '0')}.png`);
          writeFileSync(path, r.image);
          console.log(`  [image: ${path}]`);
        }
        turns.push(user, { role: 'assistant', content: [{ text: r.text }] });
      } catch (e) {
        if (!(e instanceof ChatRequestError)) throw e;
        console.log(`\n  [${e.message}]`);
      }
    }
  } finally {
    rl.close();
    model.dispose();
  }
  return 0;
}
