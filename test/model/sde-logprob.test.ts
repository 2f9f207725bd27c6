// The SDE-window log-probability of docs/method.md 3.3 against the closed-form Gaussian density:
// x' ~ N(mu, s^2 I) with s = sigma sqrt(-dt) has, per element, log N = -(x' - mu)^2 / (2 s^2)
// - log s - log(2 pi) / 2. sdeStep's logProb is that density with the constants and log s
// dropped and averaged over the elements: logProb = mean(log N) + log s + log(2 pi) / 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../../src/torch/index.js';
import { sdeSigma, sdeStep, timestepGrid } from '../../src/model/index.js';

/** The per-element Gaussian log-density log N(x; mu, s^2), in float64. */
function gaussianLogPdf(x: number, mu: number, s: number): number {
  return -((x - mu) ** 2) / (2 * s * s) - Math.log(s) - 0.5 * Math.log(2 * Math.PI);
}

test('sdeStep log-prob equals the closed-form Gaussian log-density up to the dropped constants (mean over elements)', () => {
  torch.scope(() => {
    torch.manualSeed(3);
    const taus = timestepGrid(15, 3);
    for (const j of [0, 2, 5]) {
      const tau = taus[j]!;
      const tauNext = taus[j + 1]!;
      const sigma = sdeSigma(taus, j, 1.3);
      const s = sigma * Math.sqrt(tau - tauNext);
      const x = torch.randn([6, 8]);
      const v = torch.randn([6, 8]);
      // Score a sample that is not the step's own draw (any point of the support).
      const sample = torch.randn([6, 8]).mul(2);
      const r = sdeStep(x, v, tau, tauNext, sigma, { sample });
      const xs = Array.from(sample.dataSync() as Float32Array);
      const mus = Array.from(r.mean.dataSync() as Float32Array);
      // The mean itself, in closed form: mu = x (1 + sigma^2 dt / (2 tau)) + v (1 + sigma^2 (1 - tau) / (2 tau)) dt.
      const dt = tauNext - tau;
      const xa = Array.from(x.dataSync() as Float32Array);
      const va = Array.from(v.dataSync() as Float32Array);
      xa.forEach((xi, i) => {
        const mu = xi * (1 + (sigma * sigma * dt) / (2 * tau)) + va[i]! * (1 + (sigma * sigma * (1 - tau)) / (2 * tau)) * dt;
        assert.ok(Math.abs(mu - mus[i]!) < 1e-4 * Math.max(1, Math.abs(mu)), `mean ${i}: ${mus[i]} vs ${mu}`);
      });
      const n = xs.length;
      const meanLogN = xs.reduce((a, xi, i) => a + gaussianLogPdf(xi, mus[i]!, s), 0) / n;
      const expected = meanLogN + Math.log(s) + 0.5 * Math.log(2 * Math.PI);
      const got = r.logProb.item();
      assert.ok(Math.abs(got - expected) < 1e-5 * Math.max(1, Math.abs(expected)), `j=${j}: ${got} vs ${expected}`);
      // The dropped terms are constant in the sample: differences of log-probs are differences of mean log N.
      const other = torch.randn([6, 8]);
      const r2 = sdeStep(x, v, tau, tauNext, sigma, { sample: other });
      const os = Array.from(other.dataSync() as Float32Array);
      const meanLogN2 = os.reduce((a, xi, i) => a + gaussianLogPdf(xi, mus[i]!, s), 0) / n;
      assert.ok(Math.abs((r2.logProb.item() - got) - (meanLogN2 - meanLogN)) < 1e-5 * Math.max(1, Math.abs(meanLogN2 - meanLogN)));
    }
  });
});

test('sdeStep log-prob of its own draw is -mean(eps^2)/2, and 0 (the maximum) at the mean', () => {
  torch.scope(() => {
    torch.manualSeed(5);
    const taus = timestepGrid(6, 3);
    const x = torch.randn([4, 16]);
    const v = torch.randn([4, 16]);
    const sigma = sdeSigma(taus, 1, 1.3);
    const atMean = sdeStep(x, v, taus[1]!, taus[2]!, sigma, { noise: torch.ops.zeros([4, 16], 'float32') });
    assert.equal(Math.abs(atMean.logProb.item()), 0);
    const eps = torch.randn([4, 16]);
    const r = sdeStep(x, v, taus[1]!, taus[2]!, sigma, { noise: eps });
    assert.ok(r.logProb.item() < 0);
    assert.ok(Math.abs(r.logProb.item() + eps.pow(2).mean().item() / 2) < 1e-5);
  });
});
