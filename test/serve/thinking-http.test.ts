// Thinking mode through HTTP (docs/serving.md 4) with the real model engine on an untrained micro
// model: the plan comes back as `reasoning_content` (and `image_plan`), never in `content`, the
// same plan and image the character runtime makes in process; streamed as reasoning deltas after
// the reply's; the request field, OpenAI's reasoning_effort where it means something, the
// character's setting, and 400s naming the field for what has no meaning.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportCard, loadSampleCharacter } from '../../src/data/index.js';
import { MICRO } from '../../src/model/index.js';
import { manualSeed, noGrad } from '../../src/torch/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { ModelChatEngine, startServer, type RunningServer } from '../../src/serve/index.js';

let dir: string;
let server: RunningServer;
let id: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'serve-thinking-'));
  server = await startServer({ dataDir: dir, engine: new ModelChatEngine(join(dir, 'models')), port: 0 });
  const { character } = loadSampleCharacter();
  const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
  id = ((await res.json()) as { id: string }).id;
  const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
  const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
  // llm2vae starts at zero (every image alike); weights make the caption show in the pixels.
  manualSeed(1);
  noGrad(() => m.model.llm2vae!.weight.normal_(0, 0.1));
  m.save(join(dir, 'models', id));
  m.dispose();
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

type Message = { content: string; reasoning_content?: string; image_plan?: { thinking_process: string; generation_instruction: string; missing: string[] }; images?: { image_url: { url: string } }[] };
type Completion = { choices: { message: Message }[]; error?: { message: string; param: string | null } };

const USER = 'Show me where the parcel goes.';
const base = { model: '', messages: [{ role: 'user', content: USER }], max_tokens: 6, temperature: 0, seed: 3 };
async function complete(body: Record<string, unknown>): Promise<{ status: number; body: Completion }> {
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...base, model: id, ...body }) });
  return { status: res.status, body: (await res.json()) as Completion };
}
const pngOf = (m: Message): Buffer => Buffer.from(m.images![0]!.image_url.url.split(',')[1]!, 'base64');
const image = ['text', 'image'];

test('thinking: true returns the runtime\'s plan as reasoning_content and draws its image', async () => {
  const r = await complete({ modalities: image, thinking: true });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const msg = r.body.choices[0]!.message;
  const m = await CharacterModel.load(join(dir, 'models', id));
  try {
    const local = await m.chat([{ role: 'user', content: [{ text: USER }] }], { maxTokens: 6, temperature: 0, seed: 3, image: true, thinking: true });
    assert.equal(msg.content, local.text);
    assert.equal(msg.reasoning_content, local.plan!.text);
    assert.deepEqual(msg.image_plan, { thinking_process: local.plan!.thinkingProcess, generation_instruction: local.plan!.generationInstruction, missing: local.plan!.missing });
    assert.deepEqual(new Uint8Array(pngOf(msg)), local.image);
    // The plan is not in the visible reply, and the image is not the plain caption's.
    assert.ok(msg.reasoning_content!.length > 0 && !msg.content.includes(msg.reasoning_content!));
    const plain = await complete({ modalities: image });
    assert.equal(plain.body.choices[0]!.message.reasoning_content, undefined);
    assert.notDeepEqual(pngOf(plain.body.choices[0]!.message), pngOf(msg));
  } finally {
    m.dispose();
  }
});

test('streamed: reasoning_content deltas after the content deltas, the same texts as the message', async () => {
  const whole = (await complete({ modalities: image, thinking: true })).body.choices[0]!.message;
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...base, model: id, modalities: image, thinking: true, stream: true }) });
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  assert.equal(events.at(-1), '[DONE]');
  const deltas = events.slice(0, -1).map((e) => (JSON.parse(e) as { choices: { delta: Record<string, unknown> }[] }).choices[0]?.delta ?? {});
  const kinds = deltas.flatMap((d) => (typeof d.reasoning_content === 'string' ? ['r'] : typeof d.content === 'string' && d.content !== '' ? ['c'] : []));
  assert.ok(kinds.includes('r') && kinds.includes('c'));
  assert.equal(kinds.join('').replace(/c+r+$/, ''), '', `content first, then reasoning: ${kinds.join('')}`);
  assert.equal(deltas.map((d) => (d.content as string | undefined) ?? '').join(''), whole.content);
  assert.equal(deltas.map((d) => (d.reasoning_content as string | undefined) ?? '').join(''), whole.reasoning_content);
  assert.deepEqual(deltas.find((d) => d.image_plan)?.image_plan, whole.image_plan);
});

test('the character setting turns thinking on for image replies; the request and reasoning_effort none/auto win or defer', async () => {
  const patch = await fetch(`${server.url}/v1/characters/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ thinking: true }) });
  assert.equal(((await patch.json()) as { thinking: boolean }).thinking, true);
  try {
    const think = async (extra: Record<string, unknown>): Promise<boolean> => {
      const r = await complete(extra);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return typeof r.body.choices[0]!.message.reasoning_content === 'string';
    };
    assert.equal(await think({ modalities: image }), true);
    assert.equal(await think({ modalities: image, reasoning_effort: 'auto' }), true);
    assert.equal(await think({ modalities: image, thinking: false }), false);
    assert.equal(await think({ modalities: image, reasoning_effort: 'none' }), false);
    // A text-only reply has no image to plan: the setting does not apply.
    assert.equal(await think({ modalities: ['text'] }), false);
  } finally {
    await fetch(`${server.url}/v1/characters/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ thinking: false }) });
  }
});

test('400s naming the field: thinking without an image, effort levels, contradictions', async () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ modalities: ['text'], thinking: true }, 'thinking', /plan is for the reply's image/],
    [{ modalities: image, reasoning_effort: 'high' }, 'reasoning_effort', /'high' has no meaning here/],
    [{ modalities: image, reasoning_effort: 'low', thinking: true }, 'reasoning_effort', /without levels/],
    [{ modalities: image, reasoning_effort: 'none', thinking: true }, 'thinking', /contradicts/],
    [{ modalities: image, thinking: 'yes' }, 'thinking', /boolean/],
  ];
  for (const [body, param, message] of cases) {
    const r = await complete(body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error!.param, param, JSON.stringify(r.body));
    assert.match(r.body.error!.message, message);
  }
});
