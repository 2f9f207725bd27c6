// A progress line for long work: step/total, a bar, loss, tokens/s and ETA. On a terminal it
// redraws one line in place; anywhere else (a log file, a pipe, a job runner) it prints a full
// line every `intervalMs`. Writing never throws: a closed or missing stream only silences it.
// The stream and the clock are injectable, so the output is testable to the character.

/** The part of a writable stream the bar uses (process.stderr fits). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Steps in the whole run. */
  total: number;
  /** Steps already done when the bar starts (a resumed run); rates count only new steps. */
  start?: number;
  /** Where to write (default process.stderr). */
  stream?: ProgressStream | null;
  /** Milliseconds on a monotonic clock (default performance.now). */
  now?: () => number;
  /** Force terminal (redraw) or line mode; default: the stream's isTTY. */
  tty?: boolean;
  /** Line mode: at most one line per this many ms (default 10 000). */
  intervalMs?: number;
  /** Terminal mode: at most one redraw per this many ms (default 100). */
  redrawMs?: number;
  /** Printed before the step count (e.g. "sft"). */
  label?: string;
  /** Characters in the bar (default 20; 0 for none). */
  barWidth?: number;
  /** Updates over which tokens/s and time per step are averaged (default 20). */
  window?: number;
}

export interface ProgressUpdate {
  loss?: number;
  /** Tokens processed by this step (summed for tokens/s). */
  tokens?: number;
}

/** "1:02:03" or "2:03" for seconds. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`;
}

/** 950, 1.23k, 45.6M. */
export function formatRate(x: number): string {
  if (!Number.isFinite(x)) return '?';
  const a = Math.abs(x);
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(x / 1e3).toFixed(2)}k`;
  return a >= 100 ? x.toFixed(0) : x.toFixed(1);
}

/** Four significant digits, exponent form for very small or large values. */
export function formatLoss(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(3) : x.toPrecision(4);
}

interface Sample {
  t: number;
  step: number;
  tokens: number;
}

export class ProgressBar {
  private readonly total: number;
  private readonly stream: ProgressStream | null;
  private readonly now: () => number;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly redrawMs: number;
  private readonly label: string;
  private readonly barWidth: number;
  private readonly windowSize: number;
  private readonly startTime: number;
  private readonly samples: Sample[] = [];
  private step: number;
  private tokens = 0;
  private loss: number | undefined;
  private lastWrite = -Infinity;
  private line = '';
  private drawn = false;
  private finished = false;

  constructor(options: ProgressOptions) {
    this.total = options.total;
    this.step = options.start ?? 0;
    this.stream = options.stream === undefined ? process.stderr : options.stream;
    this.now = options.now ?? (() => performance.now());
    let tty = false;
    try {
      tty = options.tty ?? this.stream?.isTTY === true;
    } catch {
      tty = false;
    }
    this.tty = tty;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.redrawMs = options.redrawMs ?? 100;
    this.label = options.label ?? '';
    this.barWidth = options.barWidth ?? 20;
    this.windowSize = Math.max(1, options.window ?? 20);
    this.startTime = this.now();
    this.samples.push({ t: this.startTime, step: this.step, tokens: 0 });
  }

  /** Records that `step` steps are done; draws or prints when it is time. */
  update(step: number, u: ProgressUpdate = {}): void {
    if (this.finished) return;
    this.step = step;
    if (u.loss !== undefined) this.loss = u.loss;
    if (u.tokens !== undefined) this.tokens += u.tokens;
    const t = this.now();
    this.samples.push({ t, step, tokens: this.tokens });
    if (this.samples.length > this.windowSize + 1) this.samples.shift();
    const due = this.tty ? t - this.lastWrite >= this.redrawMs : t - this.lastWrite >= this.intervalMs;
    if (due || step >= this.total) this.draw(t);
  }

  /** Tokens per second over the recent window (NaN before any time has passed). */
  tokensPerSecond(): number {
    const a = this.samples[0]!;
    const b = this.samples[this.samples.length - 1]!;
    const dt = (b.t - a.t) / 1000;
    return dt > 0 ? (b.tokens - a.tokens) / dt : NaN;
  }

  /** Seconds left at the recent pace (NaN before a step has been timed). */
  etaSeconds(): number {
    const a = this.samples[0]!;
    const b = this.samples[this.samples.length - 1]!;
    const steps = b.step - a.step;
    if (steps <= 0) return NaN;
    return ((b.t - a.t) / 1000 / steps) * Math.max(0, this.total - b.step);
  }

  /** The text of the progress line now. */
  render(t = this.now()): string {
    const parts: string[] = [];
    if (this.label) parts.push(this.label);
    const frac = this.total > 0 ? Math.min(1, Math.max(0, this.step / this.total)) : 0;
    parts.push(`step ${this.step}/${this.total}`);
    if (this.barWidth > 0) {
      const fill = Math.round(frac * this.barWidth);
      parts.push(`[${'#'.repeat(fill)}${'-'.repeat(this.barWidth - fill)}]`);
    }
    parts.push(`${(frac * 100).toFixed(0).padStart(3)}%`);
    if (this.loss !== undefined) parts.push(`loss ${formatLoss(this.loss)}`);
    if (this.tokens > 0) parts.push(`${formatRate(this.tokensPerSecond())} tok/s`);
    parts.push(`elapsed ${formatDuration((t - this.startTime) / 1000)}`);
    parts.push(this.step >= this.total ? 'done' : `ETA ${formatDuration(this.etaSeconds())}`);
    return parts.join(' ');
  }

  /** Prints a message without breaking the progress line (on a terminal it reappears below). */
  log(message: string): void {
    if (this.tty && this.drawn && !this.finished) {
      this.write(`\r\x1b[K${message}\n${this.fit(this.line)}`);
    } else {
      this.write(message + '\n');
    }
  }

  /** Draws the final state and ends the line. Further updates are ignored. */
  finish(): void {
    if (this.finished) return;
    const t = this.now();
    const line = this.render(t);
    if (this.tty) this.write(`\r${this.fit(line)}\x1b[K\n`);
    else if (line !== this.line) this.write(line + '\n');
    this.finished = true;
  }

  private draw(t: number): void {
    this.line = this.render(t);
    this.lastWrite = t;
    if (this.tty) {
      this.write(`\r${this.fit(this.line)}\x1b[K`);
      this.drawn = true;
    } else {
      this.write(this.line + '\n');
    }
  }

  // A terminal line longer than the window would wrap and break the in-place redraw.
  private fit(line: string): string {
    const cols = this.stream?.columns;
    return typeof cols === 'number' && cols > 1 && line.length >= cols ? line.slice(0, cols - 1) : line;
  }

  private write(s: string): void {
    if (!this.stream) return;
    try {
      this.stream.write(s);
    } catch {
      // a closed pipe or a missing terminal must not stop training
    }
  }
}
