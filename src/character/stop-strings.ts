// Stop strings on a streamed reply (docs/serving.md 3): the reply ends just before the first
// occurrence of any stop string, and while streaming, text that might be the start of one is
// held back until it is known not to be, so no client ever sees part of a stop string.
export class StopHoldback {
  /** The reply so far (emitted and held). */
  text = '';
  private emitted = 0;

  constructor(
    private readonly stops: readonly string[],
    private readonly onText?: (piece: string) => void,
  ) {}

  /** Adds decoded text; true when a stop string has appeared (the text is cut before it). */
  push(piece: string): boolean {
    if (!piece) return false;
    const from = Math.max(0, this.text.length - Math.max(0, ...this.stops.map((s) => s.length)) + 1);
    this.text += piece;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.text.indexOf(s, from);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.text = this.text.slice(0, cut);
      this.emit(cut);
      return true;
    }
    this.emit(this.text.length - this.heldLength());
    return false;
  }

  /** Emits whatever is held (the reply is complete). */
  end(): void {
    this.emit(this.text.length);
  }

  /** The longest end of the text that begins some stop string. */
  private heldLength(): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.text.length); n > best; n--) {
        if (this.text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }

  private emit(upTo: number): void {
    if (upTo > this.emitted) {
      this.onText?.(this.text.slice(this.emitted, upTo));
      this.emitted = upTo;
    }
  }
}
