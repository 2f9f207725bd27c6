// The KL term of Character-GRPO (docs/method.md 3.6): beta * mean((mu_theta - mu_ref)^2) / (2 sigma^2)
// against its closed form and gradient, the frozen reference policy's weight swap, and a run in
// which beta > 0 changes the training (never silently ignored).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../../src/torch/index.js';
import { klPenalty } from '../../src/train/grpo-objective.js';
import { ReferencePolicy } from '../../src/train/grpo-reference.js';
import { trainGrpo } from '../../src/train/grpo.js';
import { tinyGrpoConfig, writeTinySft } from './fixtures/grpo-fixtures.js';

test('klPenalty: beta * mean((mu - mu_ref)^2) / (2 sigma^2) and its gradient beta (mu - mu_ref) / (n sigma^2)', () => {
  torch.scope(() => {
    const mu = torch.tensor([1, 2, 3, 4], { dtype: 'float32' });
    mu.requiresGrad = true;
    const ref = torch.tensor([0, 2, 5, 4], { dtype: 'float32' });
    // Differences 1, 0, -2, 0: mean square 5/4; / (2 * 0.25) = 2.5; * 0.1 = 0.25.
    const kl = klPenalty(mu, ref, 0.5, 0.1);
    assert.ok(Math.abs(kl.item() - 0.25) < 1e-7, String(kl.item()));
    kl.backward();
    const g = Array.from(mu.grad!.dataSync() as Float32Array);
    [0.1, 0, -0.2, 0].forEach((v, i) => assert.ok(Math.abs(g[i]! - v) < 1e-7, `${g}`));
    assert.equal(klPenalty(mu, mu.detach(), 0.3, 2).item(), 0);
  });
});

test('ReferencePolicy: evaluates with the frozen values, restores the live ones bit for bit', () => {
  torch.scope(() => {
    const p = torch.tensor([1, 2, 3], { dtype: 'float32' });
    p.requiresGrad = true;
    const ref = new ReferencePolicy([p]);
    torch.noGrad(() => p.add_(10));
    const inside = ref.run(() => Array.from(p.dataSync() as Float32Array));
    assert.deepEqual(inside, [1, 2, 3]);
    assert.deepEqual(Array.from(p.dataSync() as Float32Array), [11, 12, 13]);
    assert.throws(() => ref.run(() => { throw new Error('boom'); }), /boom/);
    assert.deepEqual(Array.from(p.dataSync() as Float32Array), [11, 12, 13], 'restored after an error too');
    ref.dispose();
  });
});

test('beta > 0: no KL while the policy is the reference (epoch 0), a positive KL after an update, and different training', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpo-kl-'));
  try {
    const from = writeTinySft(dir);
    const run = async (name: string, beta: number) => {
      const logs: string[] = [];
      await trainGrpo(tinyGrpoConfig(from, join(dir, name), { beta, epochs: 2 }), {
        log: (l) => logs.push(l), progress: null, handleSigint: false, reward: (images) => images.map((im) => im.data[0]! + im.data[7]!),
      });
      const metrics = readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
      return { metrics, log: logs.join('\n') };
    };
    const off = await run('off', 0);
    const on = await run('on', 50);
    assert.equal(off.metrics[0]!.kl_loss, undefined);
    assert.ok(on.log.includes('KL to the frozen starting generation expert, beta 50'), on.log);
    assert.equal(on.metrics[0]!.kl_loss, 0, 'mu_theta = mu_ref before the first update');
    assert.equal(on.metrics[0]!.grad_norm, off.metrics[0]!.grad_norm, 'a zero KL adds a zero gradient');
    assert.ok(on.metrics[1]!.kl_loss! > 0, `epoch 1 KL ${on.metrics[1]!.kl_loss}`);
    assert.notEqual(on.metrics[1]!.grad_norm, off.metrics[1]!.grad_norm);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
