"""Python PyTorch baseline of the tiny model's SFT step for `npm run bench:train` (run with
/usr/bin/python3, Debian's python3-torch: the same libtorch 1.13 and OpenBLAS as the binding).

The step written in plain torch from the method (docs/method.md 1.2-1.4, 2.3), with the formulas
of test/model/fixtures/make_model_fixture.py and the operation order of the TS side
(src/model/training.ts, src/model/mot.ts, src/model/siglip.ts, src/train/sft.ts):
  * text tokens from the embedding table, SigLIP ViT tokens + connector + vit_pos_embed, VAE
    latent tokens x_t = (1 - t) x0 + t eps through vae2llm + TimestepEmbedder(t) +
    latent_pos_embed, scattered into one packed sequence;
  * the MoT decoder: hard per-token routing to the und / gen expert (index_select, the expert's
    weights, index_copy back), per-head QK RMSNorm, RoPE, GQA attention per sample under the
    pack's additive masks (causal / full / noise splits), per-expert final norms;
  * loss 0.25 CE + 1.0 MSE as global token means (CE sum / N_ce, per-token mean squared
    velocity error summed / N_mse), backward, zeros for parameters the batch did not reach,
    clip_grad_norm_ 1.0, AdamW (betas, eps and weight decay from the config).

Usage: sft_baseline.py <weights.safetensors> <batch.safetensors> '<json config>'
The weights are the model's state dict under the published key names (src/model/checkpoint.ts);
the metadata key "trainable" lists the trainable parameters in the TS optimizer's order. The
batch file holds every tensor of the PackedBatch the TS step uses (bench/sft-baseline.ts writes
both files). A line protocol, so that the bench can alternate the TS and the Python step:
  "step"       one SFT step; answers {"ms", "loss", "ce", "mse"} (ms: wall time of the step)
  "profile N"  N steps under torch.autograd.profiler; answers per-step phase times and the
               top-level ops of the forward and optimizer phases ({"phases", "ops"})
The first line written is {"version", "threads"}.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64, 'I32': torch.int32,
          'BOOL': torch.bool, 'U8': torch.uint8, 'F16': torch.float16, 'BF16': torch.bfloat16}


def load_safetensors(path):
    """(tensors, metadata) of a safetensors file: an 8-byte header length, a JSON header, the data."""
    with open(path, 'rb') as f:
        data = f.read()
    n = int.from_bytes(data[:8], 'little')
    header = json.loads(data[8:8 + n])
    meta = header.pop('__metadata__', {}) or {}
    base = 8 + n
    out = {}
    for k, v in header.items():
        b, e = v['data_offsets']
        dt = DTYPES[v['dtype']]
        t = torch.frombuffer(bytearray(data[base + b:base + e]), dtype=dt) if e > b else torch.empty(0, dtype=dt)
        out[k] = t.reshape(v['shape']).clone()
    return out, meta


class Step:
    def __init__(self, weights_path, batch_path, cfg):
        self.cfg = cfg
        self.W, meta = load_safetensors(weights_path)
        self.params = [self.W[k].requires_grad_() for k in json.loads(meta['trainable'])]
        self.B, bmeta = load_safetensors(batch_path)
        self.sample_lens = json.loads(bmeta['sampleLens'])
        self.vit_lens = json.loads(bmeta.get('vitLens', '[]'))
        self.length = int(bmeta['length'])
        o = cfg['optim']
        self.opt = torch.optim.AdamW(self.params, lr=o['lr'], betas=tuple(o['betas']), eps=o['eps'],
                                     weight_decay=o['weightDecay'], foreach=True)

    # ---------------------------------------------------------------- pieces
    def linear(self, x, prefix, bias=True):
        return F.linear(x, self.W[prefix + '.weight'], self.W.get(prefix + '.bias') if bias else None)

    def rms_norm(self, x, prefix):  # Qwen2RMSNorm, as src/nn/norm.ts
        var = x.pow(2).mean(-1, keepdim=True)
        return self.W[prefix + '.weight'] * (x * (var + self.cfg['llm']['rmsNormEps']).rsqrt())

    def layer_norm(self, x, prefix):
        return F.layer_norm(x, (x.shape[-1],), self.W[prefix + '.weight'], self.W[prefix + '.bias'], self.cfg['vit']['layerNormEps'])

    def routed(self, x, f_und, f_gen):
        und, gen = self.B.get('undIndex'), self.B.get('genIndex')
        if gen is None:
            return f_und(x)
        if und is None:
            return f_gen(x)
        yu = f_und(x.index_select(0, und))
        yg = f_gen(x.index_select(0, gen))
        out = torch.zeros((x.shape[0],) + tuple(yu.shape[1:]), dtype=yu.dtype)
        return out.index_copy(0, und, yu).index_copy(0, gen, yg)

    @staticmethod
    def sdpa(q, k, v, mask):
        if hasattr(F, 'scaled_dot_product_attention'):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return F._scaled_dot_product_attention(q, k, v, mask, 0.0, False, False)[0]

    # ---------------------------------------------------------------- the ViT path
    def embed_vit(self):
        B, vm = self.B, 'vit_model.vision_model.'
        ids = B['vitPositionIds']
        h = self.linear(B['vitPatches'], vm + 'embeddings.patch_embedding') + F.embedding(ids, self.W[vm + 'embeddings.position_embedding.weight'])
        Hh = self.cfg['vit']['numHeads']
        Dv = h.shape[1]
        d = Dv // Hh
        for l in range(self.cfg['vit']['numLayers']):
            b = vm + 'encoder.layers.%d.' % l
            t = self.layer_norm(h, b + 'layer_norm1')
            N = t.shape[0]
            q, k, v = (self.linear(t, b + 'self_attn.' + n).reshape(N, Hh, d).transpose(0, 1) for n in ('q_proj', 'k_proj', 'v_proj'))
            parts, at = [], 0
            for L in self.vit_lens:  # full attention inside each image only
                o = self.sdpa(*(z.narrow(1, at, L).unsqueeze(0) for z in (q, k, v)), None)
                parts.append(o.squeeze(0).transpose(0, 1).reshape(L, Dv))
                at += L
            h = h + self.linear(parts[0] if len(parts) == 1 else torch.cat(parts, 0), b + 'self_attn.out_proj')
            t = self.layer_norm(h, b + 'layer_norm2')
            h = h + self.linear(F.gelu(self.linear(t, b + 'mlp.fc1'), approximate='tanh'), b + 'mlp.fc2')
        h = self.layer_norm(h, vm + 'post_layernorm')
        h = self.linear(F.gelu(self.linear(h, 'connector.fc1'), approximate='tanh'), 'connector.fc2')
        return h + self.W['vit_pos_embed.pos_embed'].index_select(0, ids)

    # ---------------------------------------------------------------- the latent path
    def timestep_embed(self, t):
        half = self.cfg['timestepFreqDim'] // 2
        freqs = (torch.arange(0, half, 1, dtype=torch.float32) * (-math.log(10000) / half)).exp()
        args = t.unsqueeze(1) * freqs.unsqueeze(0)
        f = torch.cat([args.cos(), args.sin()], -1)
        return self.linear(F.silu(self.linear(f, 'time_embedder.mlp.0')), 'time_embedder.mlp.2')

    # ---------------------------------------------------------------- the MoT decoder
    def rope(self):
        c = self.cfg['llm']
        d = c['headDim']
        inv = (torch.arange(0, d, 2, dtype=torch.int64).float() / d * math.log(c['ropeTheta'])).neg().exp()
        freqs = self.B['positionIds'].float().unsqueeze(1) * inv.unsqueeze(0)
        emb = torch.cat([freqs, freqs], -1)
        return emb.cos(), emb.sin()

    @staticmethod
    def apply_rope(x, cos, sin):
        x1, x2 = x.split(x.shape[-1] // 2, -1)
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def attention(self, x, pre, rope, masks):
        c = self.cfg['llm']
        H, Hkv, d = c['numHeads'], c['numKvHeads'], c['headDim']
        N = x.shape[0]

        def qkv(e):
            def f(h):
                n = h.shape[0]
                q = self.rms_norm(self.linear(h, pre + 'q_proj' + e).reshape(n, H, d), pre + 'q_norm' + e).reshape(n, H * d)
                k = self.rms_norm(self.linear(h, pre + 'k_proj' + e).reshape(n, Hkv, d), pre + 'k_norm' + e).reshape(n, Hkv * d)
                return torch.cat([q, k, self.linear(h, pre + 'v_proj' + e)], 1)
            return f

        qf, kf, vf = self.routed(x, qkv(''), qkv('_moe_gen')).split([H * d, Hkv * d, Hkv * d], 1)
        q = self.apply_rope(qf.reshape(N, H, d).transpose(0, 1), *rope)
        k = self.apply_rope(kf.reshape(N, Hkv, d).transpose(0, 1), *rope)
        v = vf.reshape(N, Hkv, d).transpose(0, 1)
        g = H // Hkv
        parts, at = [], 0
        for L, mask in zip(self.sample_lens, masks):
            qs, ks, vs = (z.narrow(1, at, L) for z in (q, k, v))
            if g > 1:  # GQA: each kv head serves g consecutive query heads
                ks, vs = ks.repeat_interleave(g, 0), vs.repeat_interleave(g, 0)
            o = self.sdpa(qs.unsqueeze(0), ks.unsqueeze(0), vs.unsqueeze(0), mask)
            parts.append(o.squeeze(0).transpose(0, 1).reshape(L, H * d))
            at += L
        out = parts[0] if len(parts) == 1 else torch.cat(parts, 0)
        return self.routed(out, lambda t: self.linear(t, pre + 'o_proj', False), lambda t: self.linear(t, pre + 'o_proj_moe_gen', False))

    def mlp(self, t, pre):
        return self.linear(F.silu(self.linear(t, pre + '.gate_proj', False)) * self.linear(t, pre + '.up_proj', False), pre + '.down_proj', False)

    def decoder(self, seq):
        lm = 'language_model.model.'
        rope = self.rope()
        # the pack's additive masks: 0 where allowed, -inf elsewhere (src/model/packed.ts)
        masks = [torch.zeros(a.shape).masked_fill(a.logical_not(), float('-inf')) for a in
                 (self.B['allowed.%d' % s] for s in range(len(self.sample_lens)))]
        h = seq
        for l in range(self.cfg['llm']['numLayers']):
            L0 = lm + 'layers.%d.' % l
            x = self.routed(h, lambda t: self.rms_norm(t, L0 + 'input_layernorm'), lambda t: self.rms_norm(t, L0 + 'input_layernorm_moe_gen'))
            h = h + self.attention(x, L0 + 'self_attn.', rope, masks)
            h = h + self.routed(h, lambda t: self.mlp(self.rms_norm(t, L0 + 'post_attention_layernorm'), L0 + 'mlp'),
                                lambda t: self.mlp(self.rms_norm(t, L0 + 'post_attention_layernorm_moe_gen'), L0 + 'mlp_moe_gen'))
        return self.routed(h, lambda t: self.rms_norm(t, lm + 'norm'), lambda t: self.rms_norm(t, lm + 'norm_moe_gen'))

    # ---------------------------------------------------------------- the step
    def losses(self):
        """(ce_sum, mse_sum): the training forward of src/model/training.ts with reduction 'sum'."""
        B, W = self.B, self.W
        text = F.embedding(B['textIds'], W['language_model.model.embed_tokens.weight'])
        seq = torch.zeros(self.length, text.shape[1]).index_copy(0, B['textIndexes'], text)
        if 'vitPatches' in B:
            seq = seq.index_copy(0, B['vitTokenIndexes'], self.embed_vit())
        target = None
        if 'vaeLatents' in B:
            t, x0, eps = B['vaeTimesteps'], B['vaeLatents'], B['noise']
            tc = t.unsqueeze(1)
            xt = (1 - tc) * x0 + tc * eps
            emb = self.linear(xt, 'vae2llm') + self.timestep_embed(t) + W['latent_pos_embed.pos_embed'].index_select(0, B['vaePositionIds'])
            seq = seq.index_copy(0, B['vaeTokenIndexes'], emb)
            if B['vaeMseRows'].numel():
                target = (eps - x0).index_select(0, B['vaeMseRows'])
        hidden = self.decoder(seq)
        ce = mse = None
        if B['ceIndexes'].numel():
            logits = self.linear(hidden.index_select(0, B['ceIndexes']), 'language_model.lm_head', False)
            ce = F.cross_entropy(logits, B['ceLabels'], reduction='sum')
        if target is not None:
            pred = self.linear(hidden.index_select(0, B['vaeMseIndexes']), 'llm2vae')
            mse = (pred - target).pow(2).mean(-1).sum()
        return ce, mse

    def forward_backward(self):
        loss, r = self.weighted_loss()
        loss.backward()
        return r

    def weighted_loss(self):
        """The loss tensor and its values: w_ce CE_sum / N_ce + w_mse MSE_sum / N_mse (sft.ts)."""
        c = self.cfg
        n_ce = self.B['ceIndexes'].numel()
        n_mse = self.B['vaeMseRows'].numel() if 'vaeMseRows' in self.B else 0
        ce, mse = self.losses()
        # the values are read before backward, as sftForwardBackward does
        ce_v = ce.item() / n_ce if ce is not None else 0.0
        mse_v = mse.item() / n_mse if mse is not None else 0.0
        terms = []
        if ce is not None:
            terms.append(ce * (c['ceWeight'] / n_ce))
        if mse is not None:
            terms.append(mse * (c['mseWeight'] / n_mse))
        loss = terms[0] if len(terms) == 1 else terms[0] + terms[1]
        return loss, {'loss': c['ceWeight'] * ce_v + c['mseWeight'] * mse_v, 'ce': ce_v, 'mse': mse_v}

    def optimize(self):
        with torch.no_grad():
            for p in self.params:  # sft.ts ensureGradients
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg['optim']['gradClip'])
        self.opt.step()

    def step(self):
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        r = self.forward_backward()
        self.optimize()
        r['ms'] = (time.perf_counter() - t0) * 1000
        return r

    def profile(self, steps):
        """Per-step ms of the forward, backward and optimizer phases and of the forward's and the
        optimizer's top-level ops (inclusive time, like the TS side's timing of each native call)."""
        from torch.autograd import profiler
        phase_ms = {'forward': 0.0, 'backward': 0.0, 'optim': 0.0}
        with profiler.profile() as prof:
            for _ in range(steps):
                self.opt.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                with profiler.record_function('phase:forward'):
                    loss, _ = self.weighted_loss()
                t1 = time.perf_counter()
                with profiler.record_function('phase:backward'):
                    loss.backward()
                t2 = time.perf_counter()
                with profiler.record_function('phase:optim'):
                    self.optimize()
                t3 = time.perf_counter()
                phase_ms['forward'] += (t1 - t0) * 1000
                phase_ms['backward'] += (t2 - t1) * 1000
                phase_ms['optim'] += (t3 - t2) * 1000
        ops = {}
        for e in prof.function_events:
            if e.name.startswith('Optimizer.'):
                continue  # AdamW's own record_function ranges: their ops are counted instead
            parent = e.cpu_parent
            while parent is not None and parent.name.startswith('Optimizer.'):
                parent = parent.cpu_parent
            if parent is None or not parent.name.startswith('phase:') or parent.name == 'phase:backward':
                continue
            name = e.name.replace('aten::', '')
            o = ops.setdefault(name, {'ms': 0.0, 'calls': 0, 'phase': parent.name[6:]})
            o['ms'] += e.cpu_time_total / 1000 / steps
            o['calls'] += 1 / steps
        return {'phases': {k: v / steps for k, v in phase_ms.items()},
                'ops': sorted(({'name': k, **v} for k, v in ops.items()), key=lambda o: -o['ms'])}


def main():
    weights, batch, cfg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    torch.set_num_threads(cfg['threads'])
    s = Step(weights, batch, cfg)
    print(json.dumps({'version': torch.__version__, 'threads': torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == 'step':
            print(json.dumps(s.step()), flush=True)
        elif words[0] == 'profile':
            print(json.dumps(s.profile(int(words[1]))), flush=True)
        elif words[0] == 'quit':
            break
        else:
            print(json.dumps({'error': 'unknown command %r' % words[0]}), flush=True)


if __name__ == '__main__':
    main()
