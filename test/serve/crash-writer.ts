// Child process for the crash tests (not a test file itself): writes in a loop and prints one
// line per acknowledged write, until the parent kills it with SIGKILL.
//   node crash-writer.js messages <dbPath> <chatId>   three-message transactions; prints the batch number
//   node crash-writer.js images <imageDir>            ~256 KiB images; prints each hash once stored
import { randomBytes } from 'node:crypto';
import { ImageStore, Store } from '../../src/serve/index.js';

const [mode, target, chatId] = process.argv.slice(2);

function ack(line: string): void {
  // Synchronous write to the pipe: the parent reads the line only after the write call returned.
  process.stdout.write(`${line}\n`);
}

if (mode === 'messages') {
  const store = new Store(target!);
  const start = store.listMessages(chatId!).length / 3;
  for (let i = start; ; i++) {
    const filler = 'x'.repeat(2000 + (i % 7) * 1000);
    store.appendMessages(chatId!, [
      { role: 'user', content: `batch ${i} user ${filler}` },
      { role: 'assistant', content: `batch ${i} reply`, imageHashes: ['0'.repeat(64)] },
      { role: 'user', content: `batch ${i} end` },
    ]);
    ack(String(i));
  }
} else if (mode === 'images') {
  const images = new ImageStore(target!);
  for (;;) {
    const { hash } = await images.put(randomBytes(256 * 1024));
    ack(hash);
  }
} else {
  console.error(`crash-writer: unknown mode ${mode}`);
  process.exit(2);
}
