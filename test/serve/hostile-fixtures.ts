// Shared by the hostile-input tests and the serve benchmark: a stand-in engine with a fixed
// reply (the model layer is not under test there), the error-shape check, and a raw-socket
// exchange for what fetch cannot send (half-sent requests, malformed HTTP).
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { ChatEngine, ChatOptions, ChatRequest, ChatResult, GeneratedImage, ImageRequest } from '../../src/serve/index.js';

/** Replies "fixed reply to you" one word at a time, optionally `tokenDelayMs` apart; images are
 * a 1x1 GIF. `models` is what /health lists. */
export class FixedReplyEngine implements ChatEngine {
  tokenDelayMs = 0;
  constructor(private readonly modelIds: string[] = ['fixed']) {}

  models() {
    return this.modelIds.map((id) => ({ id, ready: true }));
  }

  async chat(_req: ChatRequest, opts: ChatOptions): Promise<ChatResult> {
    const tokens = ['fixed', ' reply', ' to', ' you'];
    for (const t of tokens) {
      if (this.tokenDelayMs) await new Promise((r) => setTimeout(r, this.tokenDelayMs));
      if (opts.signal.aborted) throw opts.signal.reason;
      opts.onToken?.(t);
    }
    return { text: tokens.join(''), usage: { promptTokens: 1, completionTokens: tokens.length } };
  }

  async generateImage(req: ImageRequest): Promise<{ images: GeneratedImage[] }> {
    const gif = new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0, 0, 0, 0, 0x3b]);
    return { images: Array.from({ length: req.n }, () => ({ bytes: gif, mime: 'image/gif' })) };
  }
}

export interface ErrorFields {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/** The response is `status` with exactly the OpenAI error object, and nothing else. */
export async function expectErrorShape(res: Response, status: number, what = ''): Promise<ErrorFields> {
  const text = await res.text();
  assert.equal(res.status, status, `${what}: ${text}`);
  const body = JSON.parse(text) as { error: ErrorFields };
  assert.deepEqual(Object.keys(body), ['error'], what);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type'], what);
  assert.equal(typeof body.error.message, 'string', what);
  return body.error;
}

/** Writes `bytes` on a fresh connection and collects what comes back until the server closes
 * it or `waitMs` passes (then the client closes it). */
export function rawExchange(url: string, bytes: string | Uint8Array, waitMs: number): Promise<{ text: string; closedByServer: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((done, fail) => {
    const sock = connect(Number(port), hostname);
    let text = '';
    let closedByServer = true;
    const timer = setTimeout(() => {
      closedByServer = false;
      sock.destroy();
    }, waitMs);
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') fail(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      done({ text, closedByServer });
    });
  });
}
