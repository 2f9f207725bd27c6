"""Python PyTorch baseline of Character-GRPO's rollout and policy update for `npm run bench:grpo`
(run with /usr/bin/python3, Debian's python3-torch: the same libtorch 1.13 and OpenBLAS as the
binding).

Written in plain torch from the method (docs/method.md 1.2, 1.6-1.8, 3.3, 3.6) in the operation
order of the TS side (src/train/grpo-rollout.ts, src/model/inference.ts, src/model/mot.ts,
src/model/sampling.ts, src/train/grpo-objective.ts):
  * the prompt context: <|im_start|> prompt <|im_end|> prefilled causally through the und expert
    into a per-layer cache of keys (after k_norm and RoPE) and values; the text-uncond context
    is empty;
  * the velocity of latent tokens x at time tau: <|vision_start|> (und) latents (gen)
    <|vision_end|> (und) at the context's next position, latents embedded as
    vae2llm(x) + TimestepEmbedder(tau) + latent_pos_embed, full attention over cache + query,
    llm2vae of the latent rows; text CFG v = u + s (c - u) rescaled by
    clamp(||c|| / (||v|| + 1e-8), 0, 1) (global renorm);
  * the rollout: x ~ N(0, I), then each transition of the shifted grid, an SDE step
    mu = x (1 + sigma^2 dt / (2 tau)) + v (1 + sigma^2 (1 - tau) / (2 tau)) dt,
    x' = mu + sigma sqrt(-dt) eps inside the window (sigma = a sqrt(tau / (1 - tau~))), the
    Euler step outside (sigma 0; eps is drawn at every step, as the TS sampler does, so the two
    generators stay in step), log p = -mean((x' - mu)^2) / (2 sigma^2 (-dt)) of the window
    steps, all without grad;
  * the policy update: for each micro-step, the CFG velocity with grad at a stored window step,
    log p of its stored x', the clipped loss max(-A r, -A clip(r, 1 - eps, 1 + eps)) with
    r = exp(log p - log p_old), backward of loss / micro-steps; then clip_grad_norm_ and AdamW
    (foreach) over the generation expert.

Usage: grpo_baseline.py <weights.safetensors> '<json config>'
The weights are the model's state dict under the published key names (src/model/checkpoint.ts);
the metadata key "trainable" lists the trainable parameters in the TS optimizer's order. A line
protocol, so that the bench can alternate the TS and the Python side:
  "rollout SEED START"  torch.manual_seed(SEED), one rollout with the window at START; the
                        rollout is kept for updates; answers {"ms", "latent", "logProbs"}
  "update A0 A1 ..."    one policy update over the kept window steps (micro-step m takes step
                        (u * M + m) mod count and advantage A[m mod len(A)]); answers
                        {"ms", "loss", "gradNorm", "logProbs"}
  "clear"               forgets the kept rollouts; answers {}
The first line written is {"version", "threads"}.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sft_baseline import Step, load_safetensors  # noqa: E402  (Step.sdpa: libtorch 1.13's attention)


class Grpo:
    def __init__(self, weights_path, cfg):
        self.cfg = cfg
        self.c = cfg['llm']
        self.W, meta = load_safetensors(weights_path)
        self.params = [self.W[k].requires_grad_() for k in json.loads(meta['trainable'])]
        o = cfg['optim']
        self.opt = torch.optim.AdamW(self.params, lr=o['lr'], betas=tuple(o['betas']), eps=o['eps'],
                                     weight_decay=o['weightDecay'], foreach=True)
        self.steps, self.updates = [], 0
        tk = cfg['tokens']
        g = cfg['grid']
        self.n = g * g
        self.lat_pos = torch.tensor([r * cfg['maxLatentSize'] + c for r in range(g) for c in range(g)], dtype=torch.int64)
        marks = torch.tensor([tk['startOfImage'], tk['endOfImage']], dtype=torch.int64)
        with torch.no_grad():
            self.marks = F.embedding(marks, self.W['language_model.model.embed_tokens.weight'])
            self.cond = self.prefill([tk['bos']] + cfg['prompt'] + [tk['eos']])
        self.uncond = {'kv': None, 'position': 0}
        # latent query routing: the markers und, the latents gen
        self.q_und = torch.tensor([0, self.n + 1], dtype=torch.int64)
        self.q_gen = torch.arange(1, self.n + 1, dtype=torch.int64)

    # ---------------------------------------------------------------- pieces
    def linear(self, x, prefix, bias=True):
        return F.linear(x, self.W[prefix + '.weight'], self.W.get(prefix + '.bias') if bias else None)

    def rms_norm(self, x, prefix):  # Qwen2RMSNorm, as src/nn/norm.ts
        var = x.pow(2).mean(-1, keepdim=True)
        return self.W[prefix + '.weight'] * (x * (var + self.c['rmsNormEps']).rsqrt())

    @staticmethod
    def routed(x, und, gen, f_und, f_gen):
        if gen is None:
            return f_und(x)
        yu = f_und(x.index_select(0, und))
        yg = f_gen(x.index_select(0, gen))
        out = torch.zeros((x.shape[0],) + tuple(yu.shape[1:]), dtype=yu.dtype)
        return out.index_copy(0, und, yu).index_copy(0, gen, yg)

    def rope(self, positions):
        d = self.c['headDim']
        inv = (torch.arange(0, d, 2, dtype=torch.int64).float() / d * math.log(self.c['ropeTheta'])).neg().exp()
        freqs = positions.float().unsqueeze(1) * inv.unsqueeze(0)
        emb = torch.cat([freqs, freqs], -1)
        return emb.cos(), emb.sin()

    @staticmethod
    def apply_rope(x, cos, sin):
        x1, x2 = x.split(x.shape[-1] // 2, -1)
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def timestep_embed(self, t):
        half = self.cfg['timestepFreqDim'] // 2
        freqs = (torch.arange(0, half, 1, dtype=torch.float32) * (-math.log(10000) / half)).exp()
        args = t.unsqueeze(1) * freqs.unsqueeze(0)
        f = torch.cat([args.cos(), args.sin()], -1)
        return self.linear(F.silu(self.linear(f, 'time_embedder.mlp.0')), 'time_embedder.mlp.2')

    def mlp(self, t, pre):
        return self.linear(F.silu(self.linear(t, pre + '.gate_proj', False)) * self.linear(t, pre + '.up_proj', False), pre + '.down_proj', False)

    # ---------------------------------------------------------------- the MoT decoder over a cache
    def decoder(self, h, positions, und, gen, cache, causal):
        """Final hidden states of query embeddings h; cache: per-layer (k, v) or None. Returns
        (hidden, the query's per-layer (k, v))."""
        c = self.c
        H, Hkv, d = c['numHeads'], c['numKvHeads'], c['headDim']
        N = h.shape[0]
        cos, sin = self.rope(positions)
        lm = 'language_model.model.'
        new_kv = []
        mask = None
        if causal and N > 1:
            n_cache = cache[0][0].shape[1] if cache else 0
            allowed = torch.cat([torch.ones(N, n_cache, dtype=torch.bool), torch.ones(N, N, dtype=torch.bool).tril()], 1)
            mask = torch.zeros(allowed.shape).masked_fill(allowed.logical_not(), float('-inf'))
        for l in range(c['numLayers']):
            pre = lm + 'layers.%d.' % l
            a = pre + 'self_attn.'

            def qkv(e, norm):
                def f(x):
                    x = self.rms_norm(x, pre + norm)
                    n = x.shape[0]
                    q = self.rms_norm(self.linear(x, a + 'q_proj' + e).reshape(n, H, d), a + 'q_norm' + e).reshape(n, H * d)
                    k = self.rms_norm(self.linear(x, a + 'k_proj' + e).reshape(n, Hkv, d), a + 'k_norm' + e).reshape(n, Hkv * d)
                    return torch.cat([q, k, self.linear(x, a + 'v_proj' + e)], 1)
                return f

            qf, kf, vf = self.routed(h, und, gen, qkv('', 'input_layernorm'), qkv('_moe_gen', 'input_layernorm_moe_gen')).split([H * d, Hkv * d, Hkv * d], 1)
            q = self.apply_rope(qf.reshape(N, H, d).transpose(0, 1), cos, sin)
            k = self.apply_rope(kf.reshape(N, Hkv, d).transpose(0, 1), cos, sin)
            v = vf.reshape(N, Hkv, d).transpose(0, 1)
            new_kv.append((k, v))
            if cache:
                k = torch.cat([cache[l][0], k], 1)
                v = torch.cat([cache[l][1], v], 1)
            g = H // Hkv
            ks, vs = (k.repeat_interleave(g, 0), v.repeat_interleave(g, 0)) if g > 1 else (k, v)
            o = Step.sdpa(q.unsqueeze(0), ks.unsqueeze(0), vs.unsqueeze(0), mask)
            out = o.squeeze(0).transpose(0, 1).reshape(N, H * d)

            def block(e, norm, mlp):
                def f(t):
                    att, rows = t.split([H * d, t.shape[1] - H * d], 1)
                    h1 = rows + self.linear(att, a + 'o_proj' + e, False)
                    return h1 + self.mlp(self.rms_norm(h1, pre + norm), pre + mlp)
                return f

            h = self.routed(torch.cat([out, h], 1), und, gen, block('', 'post_attention_layernorm', 'mlp'),
                            block('_moe_gen', 'post_attention_layernorm_moe_gen', 'mlp_moe_gen'))
        h = self.routed(h, und, gen, lambda t: self.rms_norm(t, lm + 'norm'), lambda t: self.rms_norm(t, lm + 'norm_moe_gen'))
        return h, new_kv

    def prefill(self, ids):
        ids = torch.tensor(ids, dtype=torch.int64)
        h = F.embedding(ids, self.W['language_model.model.embed_tokens.weight'])
        _, kv = self.decoder(h, torch.arange(0, len(ids), dtype=torch.int64), None, None, None, True)
        return {'kv': kv, 'position': len(ids)}

    # ---------------------------------------------------------------- velocity, CFG, SDE step
    def velocity(self, ctx, x, tau):
        t = torch.full((self.n,), tau, dtype=torch.float32)
        lat = self.linear(x, 'vae2llm') + self.timestep_embed(t) + self.W['latent_pos_embed.pos_embed'].index_select(0, self.lat_pos)
        inputs = torch.cat([self.marks[0:1], lat, self.marks[1:2]], 0)
        positions = torch.full((self.n + 2,), ctx['position'], dtype=torch.int64)
        hidden, _ = self.decoder(inputs, positions, self.q_und, self.q_gen, ctx['kv'], False)
        return self.linear(hidden.narrow(0, 1, self.n), 'llm2vae')

    def cfg_velocity(self, x, tau):
        cond = self.velocity(self.cond, x, tau)
        s = self.cfg['cfgTextScale']
        if not s > 1:
            return cond
        uncond = self.velocity(self.uncond, x, tau)
        v = uncond + (cond - uncond) * s
        return v * (torch.linalg.vector_norm(cond, 2) / (torch.linalg.vector_norm(v, 2) + 1e-8)).clamp(0, 1)

    @staticmethod
    def sde_mean(x, v, tau, tau_next, sigma):
        dt = tau_next - tau
        if sigma == 0:
            return x + v * dt
        return x * (1 + sigma * sigma * dt / (2 * tau)) + v * ((1 + sigma * sigma * (1 - tau) / (2 * tau)) * dt)

    @staticmethod
    def log_prob(nxt, mean, tau, tau_next, sigma):
        return (nxt - mean).pow(2).mean() / (-2 * sigma * sigma * -(tau_next - tau))

    def grid(self):
        N, s = self.cfg['numSteps'], self.cfg['timestepShift']
        return [s * t / (1 + (s - 1) * t) for t in (1 - j / (N - 1) for j in range(N))]

    # ---------------------------------------------------------------- rollout and update
    def rollout(self, seed, start):
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        taus, a, size = self.grid(), self.cfg['noiseLevel'], self.cfg['windowSize']
        lp = []
        with torch.no_grad():
            x = torch.randn(self.n, self.cfg['tokenDim'])
            for j in range(len(taus) - 1):
                tau, tau_next = taus[j], taus[j + 1]
                in_window = start <= j < start + size
                sigma = a * math.sqrt(tau / (1 - (taus[1] if tau == 1 else tau))) if in_window else 0
                mean = self.sde_mean(x, self.cfg_velocity(x, tau), tau, tau_next, sigma)
                nxt = mean + torch.randn(mean.shape) * (sigma * math.sqrt(-(tau_next - tau)))
                if in_window:
                    lp.append(self.log_prob(nxt, mean, tau, tau_next, sigma).item())
                    self.steps.append({'tau': tau, 'tauNext': tau_next, 'sigma': sigma, 'x': x, 'next': nxt, 'logProb': lp[-1]})
                x = nxt
        ms = (time.perf_counter() - t0) * 1000
        return {'ms': ms, 'latent': x.reshape(-1).tolist(), 'logProbs': lp}

    def update(self, advantages):
        t0 = time.perf_counter()
        M, eps = self.cfg['microStepsPerUpdate'], self.cfg['clipRange']
        total, lps = 0.0, []
        for m in range(M):
            s = self.steps[(self.updates * M + m) % len(self.steps)]
            A = advantages[m % len(advantages)]
            v = self.cfg_velocity(s['x'], s['tau'])
            lp = self.log_prob(s['next'], self.sde_mean(s['x'], v, s['tau'], s['tauNext'], s['sigma']), s['tau'], s['tauNext'], s['sigma'])
            ratio = (lp - s['logProb']).exp()
            loss = torch.maximum(ratio * -A, ratio.clamp(1 - eps, 1 + eps) * -A)
            (loss / M).backward()
            total += loss.item()
            lps.append(lp.item())
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg['maxGradNorm']).item()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.updates += 1
        return {'ms': (time.perf_counter() - t0) * 1000, 'loss': total, 'gradNorm': norm, 'logProbs': lps}


def main():
    weights, cfg = sys.argv[1], json.loads(sys.argv[2])
    torch.set_num_threads(cfg['threads'])
    g = Grpo(weights, cfg)
    print(json.dumps({'version': torch.__version__, 'threads': torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == 'rollout':
            print(json.dumps(g.rollout(int(words[1]), int(words[2]))), flush=True)
        elif words[0] == 'update':
            print(json.dumps(g.update([float(a) for a in words[1:]] or [1.0])), flush=True)
        elif words[0] == 'clear':
            g.steps, g.updates = [], 0
            print('{}', flush=True)
        elif words[0] == 'quit':
            break
        else:
            print(json.dumps({'error': 'unknown command %r' % words[0]}), flush=True)


if __name__ == '__main__':
    main()
