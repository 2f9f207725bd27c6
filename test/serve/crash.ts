// Runs crash-writer.js, collects the writes it acknowledged, and SIGKILLs it mid-write.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WRITER = fileURLToPath(new URL('./crash-writer.js', import.meta.url));

/** Starts the writer; after `killAfter` acknowledged writes (plus a random few ms, so the kill
 * lands at an arbitrary point of a write, or exactly `delayMs`), kills it with SIGKILL. Returns
 * the acknowledged lines. */
export function runAndKill(args: string[], killAfter: number, delayMs?: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: string[] = [];
    let buf = '';
    let stderr = '';
    let killing = false;
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.stdout.on('data', (d) => {
      buf += String(d);
      const lines = buf.split('\n');
      buf = lines.pop()!;
      acked.push(...lines);
      if (!killing && acked.length >= killAfter) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs ?? Math.floor(Math.random() * 5));
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited with ${code ?? signal} before the kill:\n${stderr}`));
      else resolve(acked);
    });
  });
}
