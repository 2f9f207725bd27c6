// LLM judges over any OpenAI-compatible chat endpoint (docs/architecture.md "Evaluation"). The prompts are plain
// text files kept in the repo (src/eval/prompts/), read at run time relative to the source tree so
// the built code uses the same files. A judge reply that is not a score in range is an error for
// that item, never a guess; a run without a judge reports judge-only metrics as not measured.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const JUDGE_API_KEY_ENV = 'UNICHARACTER_JUDGE_API_KEY';
export const JUDGE_TASKS = ['memorization', 'personality', 'roleplay', 'knowledge-open'] as const;
export type JudgeTask = (typeof JUDGE_TASKS)[number];
export const JUDGE_SCALE = { min: 1, max: 10 } as const;

/** The repo's `src/eval/prompts/` folder, found by walking up from this module (src or dist). */
export function promptsDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, 'src', 'eval', 'prompts');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error(`judge prompts: no src/eval/prompts/ above ${from}`);
    dir = up;
  }
}

export interface JudgePrompts {
  system: string;
  tasks: Record<JudgeTask, string>;
  /** Where they were read from (reported). */
  dir: string;
}

export function loadJudgePrompts(dir: string = promptsDir()): JudgePrompts {
  const read = (name: string): string => {
    const p = join(dir, `${name}.txt`);
    if (!existsSync(p)) throw new Error(`judge prompts: ${p} is missing`);
    return readFileSync(p, 'utf8').trim();
  };
  const tasks = Object.fromEntries(JUDGE_TASKS.map((t) => [t, read(t)])) as Record<JudgeTask, string>;
  return { system: read('system'), tasks, dir };
}

/** Replaces `{{slot}}` with its value; an unknown slot is an error (a typo would silently blank it). */
export function fillTemplate(template: string, slots: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in slots)) throw new Error(`judge prompt: no value for {{${k}}}`);
    return slots[k]!;
  });
}

export interface JudgeVerdict {
  score: number;
  reason: string;
}

/**
 * Reads a judge reply: a JSON object {"score", "reason"} (possibly inside a ```json fence or
 * surrounded by text), or failing that a line "score: N". Throws, saying why, when there is no
 * score, it is not a number, or it lies outside 1..10.
 */
export function parseJudgeReply(content: string): JudgeVerdict {
  const text = content.trim();
  if (text.length === 0) throw new Error('judge reply is empty');
  let score: unknown;
  let reason = '';
  const obj = /\{[\s\S]*\}/.exec(text);
  if (obj) {
    try {
      const j = JSON.parse(obj[0]) as Record<string, unknown>;
      score = j.score;
      reason = typeof j.reason === 'string' ? j.reason : '';
    } catch {
      // fall through to the "score: N" form
    }
  }
  if (score === undefined) {
    const m = /\bscore\b\s*["']?\s*[:=]\s*(-?\d+(?:\.\d+)?)/i.exec(text);
    if (m) score = Number(m[1]);
  }
  if (score === undefined) throw new Error(`judge reply has no score: ${JSON.stringify(text.slice(0, 120))}`);
  const n = typeof score === 'string' && score.trim() !== '' ? Number(score) : score;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new Error(`judge score is not a number: ${JSON.stringify(score)}`);
  if (n < JUDGE_SCALE.min || n > JUDGE_SCALE.max) throw new Error(`judge score ${n} is outside ${JUDGE_SCALE.min}..${JUDGE_SCALE.max}`);
  return { score: n, reason };
}

export interface JudgeConfig {
  /** Base URL of an OpenAI-compatible API (…/v1) or the full …/chat/completions URL. */
  url: string;
  model: string;
  /** Default: the environment variable UNICHARACTER_JUDGE_API_KEY (may be absent for local servers). */
  apiKey?: string;
  timeoutMs?: number;
  /** Extra tries after a network error or a 5xx/429 answer. */
  retries?: number;
}

export function chatCompletionsUrl(url: string): string {
  const u = url.replace(/\/+$/, '');
  return u.endsWith('/chat/completions') ? u : `${u}/chat/completions`;
}

export class JudgeClient {
  readonly prompts: JudgePrompts;
  private readonly apiKey: string | undefined;
  constructor(readonly config: JudgeConfig, prompts?: JudgePrompts) {
    this.prompts = prompts ?? loadJudgePrompts();
    this.apiKey = config.apiKey ?? process.env[JUDGE_API_KEY_ENV];
  }

  /** The evaluator id reports carry: `judge:<model>@<host>`. */
  get id(): string {
    let host = this.config.url;
    try {
      host = new URL(this.config.url).host;
    } catch {
      // keep the raw string
    }
    return `judge:${this.config.model}@${host}`;
  }

  /** One chat completion; returns the assistant message content. */
  async complete(system: string, user: string): Promise<string> {
    const body = JSON.stringify({
      model: this.config.model,
      temperature: 0,
      messages: [{ role: 'system', content: system }, { role: 'user', content: user }],
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    const tries = 1 + (this.config.retries ?? 1);
    let last: Error = new Error('judge: no attempt made');
    for (let attempt = 0; attempt < tries; attempt++) {
      let res: Response;
      try {
        res = await fetch(chatCompletionsUrl(this.config.url), { method: 'POST', headers, body, signal: AbortSignal.timeout(this.config.timeoutMs ?? 60_000) });
      } catch (e) {
        last = new Error(`judge request failed: ${(e as Error).message}`);
        continue;
      }
      const text = await res.text();
      if (!res.ok) {
        last = new Error(`judge HTTP ${res.status}: ${text.slice(0, 200)}`);
        if (res.status >= 500 || res.status === 429) continue;
        throw last;
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Error(`judge response is not JSON: ${JSON.stringify(text.slice(0, 120))}`);
      }
      const content = (json as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
      if (typeof content !== 'string') throw new Error('judge response has no choices[0].message.content');
      return content;
    }
    throw last;
  }

  /** Grades one reply on one task; throws on a transport error or a malformed verdict. */
  async grade(task: JudgeTask, slots: Record<string, string>): Promise<JudgeVerdict> {
    const user = fillTemplate(this.prompts.tasks[task], slots);
    return parseJudgeReply(await this.complete(this.prompts.system, user));
  }
}
