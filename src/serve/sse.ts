// Server-sent events in OpenAI's data-only form (ecosystem.md 4.3): each event is one
// `data: <json>` line and a blank line; the stream ends with `data: [DONE]`.
import type { ServerResponse } from 'node:http';

export class SseWriter {
  constructor(private readonly res: ServerResponse) {}

  open(headers: Record<string, string> = {}): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
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
