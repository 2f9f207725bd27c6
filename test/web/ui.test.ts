// The web UI in a real browser (playwright-core driving Debian's chromium), against the real
// server with a real tiny untrained character model: the gallery with avatars, keyboard navigation,
// a streamed chat turn with an inline image, card import by file input and by drop, live job
// progress, the report page (its metric tables), the API-key prompt, `--image-links` (the UI shows
// the image once, the signed link loads in another origin's page), a thinking-mode reply's plan
// in a collapsed section above its text, the status page's per-character memory from /health,
// and a narrow screen without horizontal scrolling.
//
// Needs /usr/bin/chromium (Debian's `chromium` package) or CHROMIUM_PATH; skipped when absent.
// Builds web/dist first when it is missing or older than web/ (build-ui.ts).
// UNICHAR_UI_SCREENSHOT=/tmp/ui.png saves a screenshot of the chat page for a look.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';
import { exportCard, loadSampleCharacter, type Character } from '../../src/data/index.js';
import { MICRO } from '../../src/model/index.js';
import { ModelChatEngine, startServer, type RunningServer } from '../../src/serve/index.js';
import { CharacterModel } from '../../src/character/index.js';
import type { EvalReport } from '../../src/eval/index.js';
import { ensureUiBuilt } from './build-ui.js';

// Functions passed to page.evaluate run in the browser. The project's tsconfig has no DOM types, so
// the few browser globals they use are declared here, for this file only (the page's CSP forbids
// eval, so string predicates are not an option).
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
declare const window: any;
declare const location: { hash: string };
type Img = { complete: boolean; naturalWidth: number; src: string };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`;
// Counted as a skipped test (a skipped suite alone shows in no summary count).
if (skip) test('web UI in chromium', { skip }, () => {});

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const API_KEY = 'ui-test-key';
const LINK_KEY = 'ui-link-key';

/** An evaluation report as the evaluator writes it (src/eval/report-types.ts), numbers made up. */
const REPORT: EvalReport = {
  format: 'unicharacter-eval/1',
  createdAt: '2026-01-02T03:04:05Z',
  character: { id: 'tessel', display: 'Tessel', category: 'original' },
  split: { dir: null, heldOutImages: 4, heldOutScenes: 4 },
  columns: [
    { label: 'base', kind: 'model', description: 'before customization' },
    { label: 'sft', kind: 'model', description: 'after Unified-SFT' },
    { label: 'chance', kind: 'chance', description: 'uniform guessing' },
  ],
  evaluators: [{ id: 'rule:rouge-l', description: 'ROUGE-L F1' }],
  settings: { seed: 7, temperature: 0.7, maxTokens: 64 },
  tasks: [
    {
      name: 'roleplay', title: 'Text role-play', notes: ['held-out scenes'], items: 4, samples: [],
      metrics: [
        { key: 'rouge_l', title: 'ROUGE-L', description: 'LCS F-measure', unit: 'F1', higherIsBetter: true, cells: { base: { value: 0.1234, evaluator: 'rule:rouge-l', n: 4 }, sft: { value: 0.4567, evaluator: 'rule:rouge-l', n: 4 } } },
        { key: 'judge', title: 'Judge score', description: 'an LLM judge', unit: 'score 1-10', higherIsBetter: true, cells: { base: { value: null, evaluator: 'judge', n: 0, notMeasured: 'no judge configured' }, sft: { value: 6.5, evaluator: 'judge:x', n: 4 } } },
      ],
    },
    {
      name: 'knowledge', title: 'Knowledge MCQ', notes: [], items: 10, samples: [],
      metrics: [{ key: 'acc', title: 'Accuracy', description: 'exact choice', unit: '%', higherIsBetter: true, cells: { sft: { value: 80, evaluator: 'rule:mcq', n: 10 }, chance: { value: 25, evaluator: 'chance', n: 10 } } }],
    },
  ],
  warnings: ['a made-up warning'],
};

async function importJson(server: RunningServer, c: Character, key?: string): Promise<string> {
  const res = await fetch(`${server.url}/v1/characters/import`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: new TextDecoder().decode(await exportCard(c, 'json', { heldOut: 'include' })),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { id: string }).id;
}

describe('web UI in chromium', { skip }, () => {
  let dir: string;
  let server: RunningServer;
  let keyServer: RunningServer;
  let linkServer: RunningServer;
  let linkId: string;
  let context: BrowserContext;
  let page: Page;
  let character: Character;
  let id: string;
  const pageErrors: string[] = [];

  before(async () => {
    ensureUiBuilt();
    dir = mkdtempSync(join(tmpdir(), 'web-ui-'));
    ({ character } = loadSampleCharacter());

    // The main server: the sample character (a PNG card, so it has an avatar) with a tiny model.
    server = await startServer({ dataDir: join(dir, 'data'), engine: new ModelChatEngine(join(dir, 'data', 'models')), port: 0 });
    const res = await fetch(`${server.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
    assert.equal(res.status, 201);
    id = ((await res.json()) as { id: string }).id;
    const texts = [character.description, ...character.dialogue.slice(0, 8).map((s) => `${s.user} ${s.reply}`)];
    const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
    m.save(join(dir, 'data', 'models', id));
    m.dispose();

    // A second server that needs an API key (no model needed: only the gallery is used).
    keyServer = await startServer({ dataDir: join(dir, 'keyed'), engine: new ModelChatEngine(join(dir, 'keyed', 'models')), port: 0, apiKey: API_KEY });
    const keyed = await fetch(`${keyServer.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png', authorization: `Bearer ${API_KEY}` }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
    assert.equal(keyed.status, 201);

    // A third one as a SillyTavern user runs it: a key and `--image-links` (docs/serving.md 4).
    linkServer = await startServer({ dataDir: join(dir, 'links'), engine: new ModelChatEngine(join(dir, 'links', 'models')), port: 0, apiKey: LINK_KEY, chats: { imageLinks: true } });
    const linked = await fetch(`${linkServer.url}/v1/characters/import`, { method: 'POST', headers: { 'content-type': 'image/png', authorization: `Bearer ${LINK_KEY}` }, body: await exportCard(character, 'png', { heldOut: 'include' }) });
    assert.equal(linked.status, 201);
    linkId = ((await linked.json()) as { id: string }).id;
    const lm = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 5, texts });
    lm.save(join(dir, 'links', 'models', linkId));
    lm.dispose();

    context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'web-ui-profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1100, height: 800 },
    });
    // Traffic stays on 127.0.0.1: anything else is refused.
    await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });

  after(async () => {
    await context?.close();
    await server?.close();
    await keyServer?.close();
    await linkServer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the gallery lists the character with its avatar', async () => {
    await page.goto(`${server.url}/`);
    const card = page.locator('.character-card', { hasText: character.names.display });
    await card.waitFor();
    assert.equal(await card.getAttribute('href'), `#/chat/${id}`);
    assert.equal(await page.locator('#key-button').isVisible(), false, 'no key asked for, no key button');
    await page.waitForFunction(() => [...document.querySelectorAll('.character-card img.avatar')].some((i: Img) => i.complete && i.naturalWidth > 0));
  });

  test('keyboard: Tab reaches the character with a visible focus ring, Enter opens the chat', async () => {
    await page.goto(`${server.url}/#/`);
    await page.locator('.character-card').first().waitFor();
    let onCard = false;
    for (let i = 0; i < 20 && !onCard; i++) {
      await page.keyboard.press('Tab');
      onCard = await page.evaluate((): boolean => document.activeElement?.classList.contains('character-card') ?? false);
    }
    assert.ok(onCard, 'Tab never reached a character card');
    const outline = await page.evaluate((): string => window.getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash.startsWith('#/chat/') && document.activeElement?.id === 'message');
  });

  test('chat: Enter sends, the reply streams in and an inline image appears with the image toggle on', async () => {
    await page.goto(`${server.url}/#/chat/${id}`);
    await page.locator('#message').waitFor();
    await page.locator('details.settings summary').click();
    await page.fill('#max-tokens', '6');
    await page.fill('#temperature', '0');
    await page.check('#include-image');
    const requestSeen = page.waitForRequest((r: Request) => r.url().endsWith('/v1/chat/completions') && r.method() === 'POST');
    await page.locator('#message').fill('Where is the next delivery?');
    await page.locator('#message').press('Enter');
    const body = JSON.parse((await requestSeen).postData() ?? '{}') as { stream?: boolean; modalities?: string[]; max_tokens?: number; messages?: { role: string; content: string }[] };
    assert.equal(body.stream, true);
    assert.deepEqual(body.modalities, ['text', 'image']);
    assert.equal(body.max_tokens, 6);
    assert.deepEqual(body.messages?.at(-1), { role: 'user', content: 'Where is the next delivery?' });

    const reply = page.locator('.message.assistant').last();
    await page.waitForFunction(() => {
      const last = [...document.querySelectorAll('.message.assistant')].at(-1);
      const img: Img | null = last?.querySelector('img.chat-image');
      return !!last && !last.classList.contains('streaming') && !!img && img.complete && img.naturalWidth > 0;
    });
    assert.equal(await reply.locator('.notice.error').count(), 0, await reply.innerText());
    assert.equal(await reply.locator('img.chat-image').evaluate((i: Img) => i.naturalWidth), 32);

    // What streamed in is what the server stored for the chat.
    const chatId = decodeURIComponent((await page.evaluate(() => location.hash)).split('/')[3] ?? '');
    assert.ok(chatId, 'the URL names the new chat');
    const stored = (await (await fetch(`${server.url}/v1/chats/${chatId}`)).json()) as { messages: { role: string; content: string; images: unknown[] }[] };
    const last = stored.messages.at(-1)!;
    assert.equal(last.role, 'assistant');
    assert.equal((await reply.locator('.text').textContent()) ?? '', last.content);
    assert.equal(last.images.length, 1);
    assert.equal(await page.evaluate((): string | undefined => document.activeElement?.id), 'message', 'focus returns to the message box');
    assert.equal(await page.locator('#stop').isVisible(), false, 'Stop goes away when the reply is done');
    if (process.env.UNICHAR_UI_SCREENSHOT) await page.screenshot({ path: process.env.UNICHAR_UI_SCREENSHOT, fullPage: true });

    // Reopening the stored chat shows the image again, fetched from /v1/images/<hash>.
    await page.goto(`${server.url}/#/jobs`);
    await page.goto(`${server.url}/#/chat/${id}/${chatId}`);
    await page.waitForFunction(() => [...document.querySelectorAll('.message.assistant img.chat-image')].some((i: Img) => i.src.startsWith('blob:') && i.naturalWidth > 0));
  });

  test('thinking: the image plan (reasoning_content) streams into a collapsed section above the reply text', async () => {
    const patch = (thinking: boolean) => fetch(`${server.url}/v1/characters/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ thinking }) });
    assert.equal((await patch(true)).status, 200);
    try {
      await page.goto(`${server.url}/#/chat/${id}`);
      await page.locator('#message').waitFor();
      await page.check('#include-image');
      const responseSeen = page.waitForResponse((r) => r.url().endsWith('/v1/chat/completions') && r.request().method() === 'POST');
      await page.locator('#message').fill('Show me the harbour.');
      await page.locator('#message').press('Enter');
      // The reasoning the server streamed, read from the response itself.
      const sse = await (await responseSeen).text();
      const streamed = sse.split('\n').filter((l) => l.startsWith('data: {')).map((l) => (JSON.parse(l.slice(6)) as { choices?: { delta?: { reasoning_content?: string } }[] }).choices?.[0]?.delta?.reasoning_content ?? '').join('');
      assert.ok(streamed.length > 0, 'the server streamed a plan');
      await page.waitForFunction(() => {
        const last = [...document.querySelectorAll('.message.assistant')].at(-1);
        return !!last && !last.classList.contains('streaming');
      });
      const reply = page.locator('.message.assistant').last();
      const details = reply.locator('details.reasoning');
      assert.equal(await details.count(), 1);
      assert.equal(await details.evaluate((d: { open: boolean }) => d.open), false, 'collapsed until opened');
      assert.equal(await reply.locator('.reasoning-text').textContent(), streamed);
      // Above the reply text: the section comes first in the bubble.
      assert.equal(await reply.evaluate((li: any) => li.querySelector('details.reasoning').compareDocumentPosition(li.querySelector('.text')) & 4), 4);
      await details.locator('summary').click();
      assert.equal(await details.evaluate((d: { open: boolean }) => d.open), true);
      assert.ok(await reply.locator('.reasoning-text').isVisible());
      // A reply without thinking has no such section.
      assert.equal((await patch(false)).status, 200);
      await page.locator('#message').fill('And the lighthouse?');
      await page.locator('#message').press('Enter');
      await page.waitForFunction(() => {
        const all = [...document.querySelectorAll('.message.assistant')];
        return all.length >= 3 && !all.at(-1)!.classList.contains('streaming');
      });
      assert.equal(await page.locator('.message.assistant').last().locator('details.reasoning').count(), 0);
    } finally {
      await patch(false);
    }
  });

  test('status: /health\'s per-character memory, as the server reports it', async () => {
    await page.goto(`${server.url}/#/status`);
    await page.locator('#memory-characters').waitFor();
    const health = (await (await fetch(`${server.url}/health`)).json()) as { engine: { memory: { characters: { id: string; own_bytes: number; base: string | null }[]; total_bytes: number } } };
    const mem = health.engine.memory;
    const mine = mem.characters.find((c) => c.id === id);
    assert.ok(mine && mine.own_bytes > 0, 'the chats above loaded the character');
    const row = page.locator(`#memory-characters tr[data-character="${id}"]`);
    assert.equal(Number(await row.locator('td[data-bytes]').getAttribute('data-bytes')), mine.own_bytes);
    assert.equal(await row.locator('td[data-bytes]').textContent(), `${(mine.own_bytes / 2 ** 20).toFixed(1)} MiB`);
    assert.match((await row.locator('td').nth(1).textContent()) ?? '', mine.base === null ? /whole model/ : new RegExp(mine.base));
    assert.equal(await page.locator('#memory-characters tbody tr').count(), mem.characters.length);
    assert.equal(Number(await page.locator('#memory-total [data-bytes]').getAttribute('data-bytes')), mem.total_bytes);
    assert.equal(await page.locator('[data-nav="status"]').getAttribute('aria-current'), 'page');
  });

  test('a card imported with the file input and one dropped on the page join the gallery', async () => {
    await page.goto(`${server.url}/#/`);
    await page.locator('.character-card').first().waitFor();
    const card = await exportCard({ ...character, id: 'picked', names: { ...character.names, display: 'Picked Card' } }, 'json', { heldOut: 'include' });
    await page.setInputFiles('#card-file', { name: 'picked.json', mimeType: 'application/json', buffer: Buffer.from(card) });
    await page.locator('.character-card', { hasText: 'Picked Card' }).waitFor();
    assert.match(await page.locator('.import-status').innerText(), /Imported Picked Card/);

    const dropped = new TextDecoder().decode(await exportCard({ ...character, id: 'dropped', names: { ...character.names, display: 'Dropped Card' } }, 'json', { heldOut: 'include' }));
    await page.evaluate((json: string) => {
      const dt = new window.DataTransfer();
      dt.items.add(new window.File([json], 'dropped.json', { type: 'application/json' }));
      document.querySelector('.dropzone').dispatchEvent(new window.DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, dropped);
    await page.locator('.character-card', { hasText: 'Dropped Card' }).waitFor();

    // A file that is no card: the error shows, nothing is added.
    await page.setInputFiles('#card-file', { name: 'junk.json', mimeType: 'application/json', buffer: Buffer.from('{"nope": 1}') });
    await page.locator('.import-status .notice.error').waitFor();
    assert.equal(await page.locator('.character-card').count(), 3);
  });

  test('jobs: "no jobs yet", then a job\'s loss curve appears live', async () => {
    await page.goto(`${server.url}/#/jobs`);
    await page.getByText('No jobs yet').waitFor();
    const job = server.store.createJob('train', {}, id);
    server.store.updateJob(job.id, { status: 'running', progress: { step: 3, total: 10, loss: 1.2, metrics: [{ step: 1, loss: 2 }, { step: 2, loss: 1.5 }, { step: 3, loss: 1.2 }] } });
    await page.locator(`.job[data-id="${job.id}"] svg.loss-chart polyline`).waitFor();
    assert.match(await page.locator(`.job[data-id="${job.id}"]`).innerText(), /step 3 \/ 10/);
  });

  test('report: says when there is no report at the configured URL', async () => {
    await page.goto(`${server.url}/#/report`);
    await page.getByText('No evaluation report yet').waitFor();
    assert.equal(await page.inputValue('#report-url'), '/v1/eval/report');
  });

  test('report: an evaluation report shows its metric tables, every cell with its evaluator', async () => {
    const job = server.store.createJob('eval', {}, id);
    server.store.updateJob(job.id, { status: 'succeeded' });
    mkdirSync(join(dir, 'data', 'runs', job.id), { recursive: true });
    writeFileSync(join(dir, 'data', 'runs', job.id, 'report.json'), JSON.stringify(REPORT));
    assert.equal((await fetch(`${server.url}/v1/eval/report`)).status, 200);
    await page.goto(`${server.url}/#/jobs`);
    await page.goto(`${server.url}/#/report`);
    await page.locator('.report-task').first().waitFor();
    assert.deepEqual(await page.locator('.report-task h2').allInnerTexts(), ['Text role-play', 'Knowledge MCQ']);
    const rows = await page.evaluate((): string[][][] =>
      [...document.querySelectorAll('.report-task table')].map((t: any) => [...t.querySelectorAll('tr')].map((r: any) => [...r.children].map((c: any) => c.innerText.replace(/\s+/g, ' ').trim()))),
    );
    assert.deepEqual(rows[0], [
      ['Metric', 'Unit', 'base', 'sft', 'chance', 'Paper'],
      ['ROUGE-L', 'F1', '0.123 rule:rouge-l · n=4', '0.457 rule:rouge-l · n=4', '—', '—'],
      ['Judge score', 'score 1-10', 'not measured no judge configured', '6.50 judge:x · n=4', '—', '—'],
    ]);
    assert.deepEqual(rows[1], [
      ['Metric', 'Unit', 'base', 'sft', 'chance', 'Paper'],
      ['Accuracy', '%', '—', '80.0% rule:mcq · n=10', '25.0% chance · n=10', '—'],
    ]);
    assert.match(await page.locator('.report-warnings').innerText(), /a made-up warning/);
    // The settings are there for whoever opens them, not instead of the tables.
    assert.equal(await page.locator('#report details').getAttribute('open'), null);
    assert.match(await page.locator('#report details pre').textContent() ?? '', /"temperature": 0.7/);
  });

  test('image links (serve --image-links with a key): the UI shows the image, not the markdown; the signed link loads in a page of another origin', async () => {
    const keyed = await context.newPage();
    try {
      await keyed.goto(`${linkServer.url}/`);
      await keyed.locator('#api-key-input').waitFor();
      await keyed.fill('#api-key-input', LINK_KEY);
      await keyed.press('#api-key-input', 'Enter');
      await keyed.locator('.character-card').first().waitFor();
      await keyed.goto(`${linkServer.url}/#/chat/${linkId}`);
      await keyed.locator('details.settings summary').click();
      await keyed.fill('#max-tokens', '4');
      await keyed.check('#include-image');
      await keyed.locator('#message').fill('Show me the market.');
      await keyed.locator('#message').press('Enter');
      await keyed.waitForFunction(() => {
        const last = [...document.querySelectorAll('.message.assistant')].at(-1);
        const img: Img | null = last?.querySelector('img.chat-image');
        return !!last && !last.classList.contains('streaming') && !!img && img.complete && img.naturalWidth > 0;
      });
      const last = keyed.locator('.message.assistant').last();
      assert.equal(await last.locator('img.chat-image').count(), 1, 'one image, from message.images');
      assert.doesNotMatch((await last.locator('.text').textContent()) ?? '', /!\[image\]|\/v1\/images\//);
    } finally {
      await keyed.close();
    }

    // What SillyTavern gets: the content with a markdown link, which it renders as an <img> in its
    // own page (another origin, no Authorization header).
    const res = await fetch(`${linkServer.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${LINK_KEY}`, connection: 'close' },
      body: JSON.stringify({ model: linkId, messages: [{ role: 'user', content: 'Show me the harbour.' }], max_tokens: 3, temperature: 0, modalities: ['text', 'image'] }),
    });
    assert.equal(res.status, 200);
    const content = ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const link = /!\[image\]\((http:\/\/[^)]+)\)$/.exec(content)?.[1];
    assert.ok(link, `no image link in ${JSON.stringify(content)}`);
    const other = await context.newPage();
    try {
      await other.goto(`${server.url}/health`);
      const loaded = async (src: string) =>
        other.evaluate(
          (u: string) =>
            new Promise<number>((resolve) => {
              const img = document.createElement('img');
              img.onload = () => resolve(img.naturalWidth);
              img.onerror = () => resolve(-1);
              img.src = u;
            }),
          src,
        );
      assert.equal(await loaded(link), 32, 'the signed link loads as an image');
      assert.equal(await loaded(link.replace(/\?sig=.*$/, '')), -1, 'without the signature it does not');
    } finally {
      await other.close();
    }
  });

  test('a narrow screen has no horizontal overflow', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    try {
      for (const hash of ['#/', `#/chat/${id}`, '#/jobs', '#/report']) {
        await page.goto(`${server.url}/${hash}`);
        await page.locator('main h1').first().waitFor();
        await page.waitForLoadState('networkidle');
        const [scroll, client] = await page.evaluate((): [number, number] => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
        assert.ok(scroll <= client, `${hash}: content is ${scroll}px wide in a ${client}px viewport`);
      }
    } finally {
      await page.setViewportSize({ width: 1100, height: 800 });
    }
  });

  test('a server with an API key: the UI asks for it, then sends it and loads avatars with it', async () => {
    const keyed = context.pages()[0]!;
    await keyed.goto(`${keyServer.url}/`);
    await keyed.locator('#api-key-input').waitFor();
    await keyed.fill('#api-key-input', 'wrong-key');
    await keyed.press('#api-key-input', 'Enter');
    await keyed.getByText('The server refused the key').waitFor();
    await keyed.fill('#api-key-input', API_KEY);
    await keyed.press('#api-key-input', 'Enter');
    await keyed.locator('.character-card', { hasText: character.names.display }).waitFor();
    await keyed.waitForFunction(() => [...document.querySelectorAll('.character-card img.avatar')].some((i: Img) => i.src.startsWith('blob:') && i.naturalWidth > 0));
    assert.equal(await keyed.locator('#key-button').isVisible(), true);
  });

  test('no script errors on any page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
