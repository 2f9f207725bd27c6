// Child process for the crash tests (not a test file itself): writes in a loop and prints one
// line per acknowledged write, until the parent kills it with SIGKILL.
//   node crash-writer.js messages <dbPath> <chatId>   three-message transactions; prints the batch number
//   node crash-writer.js images <imageDir>            ~256 KiB images; prints each hash once stored
//   node crash-writer.js install <models> <staging> <id> <srcA> <srcB>
//                                                     installs A, B, A, ... as <models>/<id>; prints A or B once installed
//   node crash-writer.js install-at <models> <staging> <id> <src> <phase>
//                                                     installs src, prints the phase when it is reached and waits there
import { randomBytes } from 'node:crypto';
import { ImageStore, Store } from '../../src/serve/index.js';
import { installModel, type InstallPhase } from '../../src/serve/model-install.js';

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
} else if (mode === 'install') {
  const [models, staging, id, a, b] = process.argv.slice(3);
  for (let i = 0; ; i++) {
    await installModel(i % 2 === 0 ? a! : b!, models!, id!, staging!);
    ack(i % 2 === 0 ? 'A' : 'B');
  }
} else if (mode === 'install-at') {
  const [models, staging, id, src, phase] = process.argv.slice(3);
  const cell = new Int32Array(new SharedArrayBuffer(4));
  await installModel(src!, models!, id!, staging!, {
    onPhase: (p: InstallPhase) => {
      if (p !== phase) return;
      ack(p);
      Atomics.wait(cell, 0, 0); // until the parent's SIGKILL
    },
  });
  console.error(`crash-writer: phase ${phase} never came`);
  process.exit(3);
} else {
  console.error(`crash-writer: unknown mode ${mode}`);
  process.exit(2);
}
