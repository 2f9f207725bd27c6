// A baseline program driven by a line protocol (bench:engine's C++ and Python baselines,
// bench:train's PyTorch SFT step): one request line, one answer line. The TS process waits idle
// while the peer runs, and the peer waits idle (blocked on stdin) while TS runs, so repetitions
// of the two sides can alternate one by one. Nothing here loads libtorch.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** The Python of the PyTorch baselines: Debian's, whose python3-torch is the binding's libtorch 1.13. */
export const BASELINE_PYTHON = '/usr/bin/python3';

/** torch's version in BASELINE_PYTHON; throws, saying how to install it, where it has none. */
export function requireBaselineTorch(): string {
  try {
    return execFileSync(BASELINE_PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    throw new Error(`the PyTorch baseline needs torch in ${BASELINE_PYTHON}: the bench's npm script installs it (UNICHAR_EXTRA_PKGS=python3-torch bash scripts/setup.sh; as root, apt-get install -y python3-torch)`);
  }
}

/** A test's skip reason when the baseline's PyTorch is missing (false when it is there). */
export function baselineTorchMissing(): string | false {
  try {
    requireBaselineTorch();
    return false;
  } catch {
    return 'python3-torch is not installed (as root: apt-get install -y python3-torch)';
  }
}

export class Peer {
  private readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  private stderr = '';
  private exited = false;
  /** Starts `cmd args` with this process's environment plus `env` (thread settings). */
  constructor(cmd: string, args: string[], env: Record<string, string> = {}) {
    this.proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(line);
      } else this.lines.push(line);
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.proc.on('exit', (code) => {
      this.exited = true;
      if (this.waiting) this.waiting(`\u0000exit ${code}`);
    });
  }
  /** The next answer line; rejects with the peer's stderr when it exits first. */
  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.exited) return Promise.reject(new Error(`baseline exited: ${this.stderr}`));
    return new Promise<string>((res, rej) => {
      this.waiting = (l) => (l.startsWith('\u0000exit') ? rej(new Error(`baseline ${l.slice(1)}: ${this.stderr}`)) : res(l));
    });
  }
  async ask(request: string): Promise<string> {
    this.proc.stdin!.write(request + '\n');
    return this.next();
  }
  close(): void {
    this.proc.stdin!.end();
  }
}
