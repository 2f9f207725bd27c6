// Server-sent events in OpenAI's data-only form (docs/ecosystem.md 4.3): each event is one
// `data: <json>` line and a blank line; the stream ends with `data: [DONE]`.
//
// The connection follows the request (docs/serving.md 6): a client that sent `Connection: close`
// gets `Connection: close` and the socket is closed once the stream ends; otherwise the stream
// is chunked and ends with its terminating chunk, so the same socket is clean for the next
// request. The header is never forced to keep-alive.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Whether the client asked for the connection to close after this response. */
export function wantsClose(req: IncomingMessage): boolean {
  const c = req.headers.connection;
  return typeof c === 'string' && c.split(',').some((t) => t.trim().toLowerCase() === 'close');
}

export class SseWriter {
  private started = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly req?: IncomingMessage,
  ) {}

  get opened(): boolean {
    return this.started;
  }

  open(headers: Record<string, string> = {}): void {
    this.started = true;
    const close = this.req !== undefined && wantsClose(this.req);
    if (close) this.res.shouldKeepAlive = false;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      ...(close ? { connection: 'close' } : {}),
      // Reverse proxies (nginx) must not buffer a token stream.
      'x-accel-buffering': 'no',
      ...headers,
    });
    this.res.flushHeaders();
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  data(value: unknown): void {
    if (!this.closed) this.res.write(`data: ${JSON.stringify(value)}\n\n`);
  }

  done(): void {
    if (this.closed) return;
    this.res.write('data: [DONE]\n\n');
    this.res.end();
  }

  end(): void {
    if (!this.closed) this.res.end();
  }
}
