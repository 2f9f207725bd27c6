// The HTML evaluation report in a real browser (docs/architecture.md "Evaluation"): a tiny eval of the
// sample character with one tiny untrained model writes report.html, which headless chromium
// (playwright-core driving Debian's chromium) opens from disk: one metrics table per task, each
// with a row per metric and a column per report column, and every image decoded (naturalWidth > 0).
// A screenshot of the whole page is written to a temp file (UNICHAR_REPORT_SCREENSHOT=/path.png
// keeps it somewhere else).
//
// Needs /usr/bin/chromium (Debian's `chromium` package) or CHROMIUM_PATH; skipped when absent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { MICRO } from '../../src/model/index.js';
import { loadSampleCharacter, SAMPLE_ROOT } from '../../src/data/index.js';
import { CharacterModel } from '../../src/character/index.js';
import { REPORT_FILES, runEval, type EvalReport } from '../../src/eval/index.js';

// Functions passed to page.evaluate run in the browser; the project's tsconfig has no DOM types.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const document: any;
type Img = { complete: boolean; naturalWidth: number; naturalHeight: number; src: string };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`;
if (skip) test('HTML report in chromium', { skip }, () => {});

// The same flags as test/web/ui.test.ts.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('HTML report in chromium', { skip }, () => {
  let dir: string;
  let out: string;
  let report: EvalReport;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const external: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'eval-html-'));
    const { character } = loadSampleCharacter();
    const texts = [character.description, character.profile, ...character.dialogue.slice(0, 10).map((s) => `${s.user} ${s.reply}`)];
    const m = CharacterModel.untrained(character, { config: MICRO, imageSize: 32, vocabSize: 300, seed: 3, texts });
    m.save(join(dir, 'base'));
    m.dispose();
    out = join(dir, 'report');
    report = await runEval({
      character,
      split: join(SAMPLE_ROOT, 'test'),
      runs: [{ label: 'base', modelDir: join(dir, 'base') }],
      evaluators: { independent: false },
      out,
      limits: { maxItems: 1, maxTokens: 4, maxAnswerTokens: 2, numTimesteps: 2, samplesPerPrompt: 1 },
    });

    context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'eval-html-profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1200, height: 900 },
    });
    // The report is self-contained: anything fetched over the network is a fault (and refused).
    await context.route(/^https?:/, (route) => {
      external.push(route.request().url());
      return route.abort();
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(pathToFileURL(join(out, REPORT_FILES.html)).href);
  });

  after(async () => {
    await context?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('one metrics table per task, with a row per metric and a column per report column', async () => {
    const h1 = await page.locator('h1').textContent();
    assert.match(h1 ?? '', /^Evaluation: /);
    const tables = await page.evaluate(() =>
      [...document.querySelectorAll('section[id^="task-"]')].map((s: any) => {
        const t = s.querySelector('table.metrics');
        return {
          id: s.id as string,
          title: (s.querySelector('h2')?.textContent ?? '') as string,
          head: t ? ([...t.querySelectorAll('thead th')].map((th: any) => th.textContent.trim()) as string[]) : null,
          rows: t ? (t.querySelectorAll('tbody tr').length as number) : 0,
          visible: t ? t.getBoundingClientRect().height > 0 : false,
        };
      }),
    );
    assert.deepEqual(tables.map((t) => t.id), report.tasks.map((t) => `task-${t.name}`));
    assert.equal(await page.locator('table.metrics').count(), report.tasks.length);
    const headings = ['metric', ...report.columns.map((c) => c.label), 'paper'];
    for (const [i, t] of tables.entries()) {
      const task = report.tasks[i]!;
      assert.equal(t.title, task.title);
      assert.deepEqual(t.head, headings, t.id);
      assert.equal(t.rows, task.metrics.length, t.id);
      assert.ok(t.visible, `${t.id}: table not rendered`);
    }
    // A measured number and a "not measured" cell are both on the page.
    assert.ok((await page.locator('table.metrics td .val').count()) > 0);
    assert.ok((await page.locator('table.metrics td.nm').count()) > 0);
  });

  test('every image loads (naturalWidth > 0), one per image sample', async () => {
    const expected = report.tasks.flatMap((t) => t.samples).filter((s) => s.image).length;
    assert.ok(expected > 0, 'the tiny eval produced no image samples');
    await page.waitForFunction(() => [...document.querySelectorAll('img')].every((i: Img) => i.complete));
    const imgs = await page.evaluate(() => [...document.querySelectorAll('img')].map((i: Img) => ({ w: i.naturalWidth, h: i.naturalHeight, data: i.src.startsWith('data:image/') })));
    assert.equal(imgs.length, expected);
    for (const [k, i] of imgs.entries()) {
      assert.ok(i.w > 0 && i.h > 0, `image ${k} did not decode`);
      assert.ok(i.data, `image ${k} is not embedded`);
    }
    assert.equal(await page.locator('.missing').count(), 0, 'an image is missing');
  });

  test('no script errors, no network requests; a full-page screenshot', async () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(external, []);
    const file = process.env.UNICHAR_REPORT_SCREENSHOT ?? join(dir, 'report.png');
    await page.screenshot({ path: file, fullPage: true });
    const png = readFileSync(file);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]);
    assert.ok(statSync(file).size > 10_000, 'screenshot suspiciously small');
  });
});
