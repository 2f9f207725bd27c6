// The judge client against a local stand-in for an OpenAI-compatible endpoint on 127.0.0.1: the
// request it sends, well-formed and malformed verdicts, HTTP errors and retries, and the prompts
// kept in the repo.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { JudgeClient, JUDGE_TASKS, chatCompletionsUrl, fillTemplate, loadJudgePrompts, parseJudgeReply, promptsDir } from '../../src/eval/index.js';

interface Seen { url: string; auth: string | undefined; body: { model: string; temperature: number; messages: { role: string; content: string }[] } }
const seen: Seen[] = [];
/** Replies served in order; a number is an HTTP status with an error body. */
let script: (string | number)[] = [];
let server: Server;
let base = '';

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (c: Buffer) => { s += c.toString(); });
    req.on('end', () => resolve(s));
  });
}

before(async () => {
  server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req)) as Seen['body'];
    seen.push({ url: req.url ?? '', auth: req.headers.authorization, body });
    const next = script.shift() ?? '{"score": 5, "reason": "default"}';
    if (typeof next === 'number') {
      res.writeHead(next, { 'content-type': 'application/json' }).end('{"error":{"message":"boom"}}');
      return;
    }
    if (next === '__not_json__') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('<html>proxy error</html>');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: next }, finish_reason: 'stop' }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
after(() => { server.close(); });

const slots = { name: 'Tessel', profile: 'A teal fox courier.', description: 'A teal fox.', style: 'cheerful', question: 'Who is Bram?', reply: 'My friend the miller!', reference: 'Bram' };

test('prompts are plain files in src/eval/prompts and fill every slot', () => {
  const dir = promptsDir();
  assert.ok(dir.endsWith('src/eval/prompts') || dir.endsWith('src\\eval\\prompts'));
  const p = loadJudgePrompts();
  for (const t of JUDGE_TASKS) {
    assert.ok(existsSync(`${dir}/${t}.txt`));
    const filled = fillTemplate(p.tasks[t], slots);
    assert.doesNotMatch(filled, /\{\{/);
  }
  assert.match(p.system, /"score"/);
  assert.throws(() => fillTemplate('{{nope}}', {}), /no value for \{\{nope\}\}/);
});

test('verdict parsing: JSON, fenced JSON, "score: N", and malformed replies', () => {
  assert.deepEqual(parseJudgeReply('{"score": 7, "reason": "good"}'), { score: 7, reason: 'good' });
  assert.equal(parseJudgeReply('Sure!\n```json\n{"score": "8", "reason": "x"}\n```').score, 8);
  assert.equal(parseJudgeReply('Score: 6\nReason: fine').score, 6);
  assert.throws(() => parseJudgeReply(''), /empty/);
  assert.throws(() => parseJudgeReply('I would rate it highly.'), /no score/);
  assert.throws(() => parseJudgeReply('{"score": 11}'), /outside 1\.\.10/);
  assert.throws(() => parseJudgeReply('{"score": 0}'), /outside/);
  assert.throws(() => parseJudgeReply('{"score": "great"}'), /not a number/);
  assert.throws(() => parseJudgeReply('{"score": null}'), /not a number/);
});

test('the client posts an OpenAI chat request with the key from the environment and reads the verdict', async () => {
  process.env.UNICHARACTER_JUDGE_API_KEY = 'test-key';
  try {
    seen.length = 0;
    script = ['{"score": 9, "reason": "recalls Bram"}'];
    const j = new JudgeClient({ url: base, model: 'judge-mini' });
    assert.equal(j.id, `judge:judge-mini@${new URL(base).host}`);
    const v = await j.grade('memorization', slots);
    assert.deepEqual(v, { score: 9, reason: 'recalls Bram' });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.url, '/v1/chat/completions');
    assert.equal(seen[0]!.auth, 'Bearer test-key');
    assert.equal(seen[0]!.body.model, 'judge-mini');
    assert.equal(seen[0]!.body.temperature, 0);
    assert.deepEqual(seen[0]!.body.messages.map((m) => m.role), ['system', 'user']);
    assert.match(seen[0]!.body.messages[1]!.content, /Task: MEMORIZATION[\s\S]*Who is Bram\?[\s\S]*My friend the miller!/);
  } finally {
    delete process.env.UNICHARACTER_JUDGE_API_KEY;
  }
});

test('malformed judge replies and HTTP failures are errors, not scores', async () => {
  const j = new JudgeClient({ url: `${base}/chat/completions`, model: 'm', retries: 1 });
  script = ['The reply is quite good.'];
  await assert.rejects(j.grade('personality', slots), /no score/);
  script = ['{"score": 42}'];
  await assert.rejects(j.grade('personality', slots), /outside/);
  script = ['__not_json__'];
  await assert.rejects(j.grade('personality', slots), /not JSON/);
  script = [400];
  await assert.rejects(j.grade('personality', slots), /HTTP 400/);
  // A 503 is retried once; the second answer counts.
  seen.length = 0;
  script = [503, '{"score": 4, "reason": "meh"}'];
  assert.equal((await j.grade('roleplay', slots)).score, 4);
  assert.equal(seen.length, 2);
  script = [500, 500];
  await assert.rejects(j.grade('roleplay', slots), /HTTP 500/);
});

test('an unreachable judge is a clear error', async () => {
  const j = new JudgeClient({ url: 'http://127.0.0.1:9/v1', model: 'm', retries: 0, timeoutMs: 2000 });
  await assert.rejects(j.grade('roleplay', slots), /judge request failed/);
  assert.equal(chatCompletionsUrl('http://h/v1/'), 'http://h/v1/chat/completions');
});
