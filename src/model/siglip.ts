// The SigLIP NaViT encoder and its connector (docs/method.md 1.3), with the published key names
// (vit_model.vision_model.embeddings.patch_embedding, encoder.layers.{i}.self_attn.q_proj, ...).
// The patch embedding is the Linear(p*p*c -> D) form BAGEL converts the conv into, so its input
// is a patchify() row in (p, q, c) order; position ids are flattened 2-D ids (row * side + col)
// into a learned table. Several images are packed; attention is full inside each and absent across.
import { checkpoint, isGradEnabled, ops, scope, type Tensor } from '../torch/index.js';
import { Embedding, FcMlp, GELU, LayerNorm, Linear, Module, ModuleList } from '../nn/index.js';
import type { VitConfig } from './config.js';
import { softmaxAttention } from './mot.js';

/** Converts a conv patch-embedding weight [D, C, p, p] into the Linear weight [D, p*p*C] in (p, q, c) order. */
export function convPatchWeightToLinear(w: Tensor): Tensor {
  return scope(() => {
    const [D, C, p, q] = w.shape as [number, number, number, number];
    return w.permute([0, 2, 3, 1]).reshape([D, p * q * C]);
  });
}

export class SiglipAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;
  constructor(readonly hidden: number, readonly numHeads: number) {
    super();
    this.q_proj = this.registerModule('q_proj', new Linear(hidden, hidden));
    this.k_proj = this.registerModule('k_proj', new Linear(hidden, hidden));
    this.v_proj = this.registerModule('v_proj', new Linear(hidden, hidden));
    this.out_proj = this.registerModule('out_proj', new Linear(hidden, hidden));
  }
  /** x: [N, D] packed images of the given lengths; attention only inside each image. */
  forward(x: Tensor, lens: number[]): Tensor {
    return scope(() => {
      const N = x.shape[0]!;
      const H = this.numHeads;
      const d = this.hidden / H;
      const heads = (t: Tensor): Tensor => t.reshape([N, H, d]).transpose(0, 1);
      const q = heads(this.q_proj.forward(x));
      const k = heads(this.k_proj.forward(x));
      const v = heads(this.v_proj.forward(x));
      const parts: Tensor[] = [];
      let at = 0;
      for (const L of lens) {
        const sl = (t: Tensor): Tensor => t.narrow(1, at, L).unsqueeze(0);
        const o = softmaxAttention(sl(q), sl(k), sl(v), null);
        parts.push(o.squeeze(0).transpose(0, 1).reshape([L, this.hidden]));
        at += L;
      }
      return this.out_proj.forward(parts.length === 1 ? parts[0]! : ops.cat(parts, 0));
    });
  }
}

export class SiglipEncoderLayer extends Module {
  readonly self_attn: SiglipAttention;
  readonly layer_norm1: LayerNorm;
  readonly mlp: FcMlp;
  readonly layer_norm2: LayerNorm;
  constructor(c: VitConfig) {
    super();
    this.self_attn = this.registerModule('self_attn', new SiglipAttention(c.hiddenSize, c.numHeads));
    this.layer_norm1 = this.registerModule('layer_norm1', new LayerNorm(c.hiddenSize, c.layerNormEps));
    this.mlp = this.registerModule('mlp', new FcMlp(c.hiddenSize, c.intermediateSize, 'gelu_pytorch_tanh'));
    this.layer_norm2 = this.registerModule('layer_norm2', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
  forward(x: Tensor, lens: number[]): Tensor {
    return scope(() => {
      const h = x.add(this.self_attn.forward(this.layer_norm1.forward(x), lens));
      return h.add(this.mlp.forward(this.layer_norm2.forward(h)));
    });
  }
}

export class SiglipEmbeddings extends Module {
  readonly patch_embedding: Linear;
  readonly position_embedding: Embedding;
  constructor(c: VitConfig) {
    super();
    const patchDim = c.patchSize * c.patchSize * c.numChannels;
    this.patch_embedding = this.registerModule('patch_embedding', new Linear(patchDim, c.hiddenSize));
    this.position_embedding = this.registerModule('position_embedding', new Embedding(c.maxNumPatchPerSide ** 2, c.hiddenSize));
  }
  forward(patches: Tensor, positionIds: Tensor): Tensor {
    return scope(() => this.patch_embedding.forward(patches).add(this.position_embedding.forward(positionIds)));
  }
}

export class SiglipEncoder extends Module {
  readonly layers: ModuleList<SiglipEncoderLayer>;
  constructor(c: VitConfig) {
    super();
    this.layers = this.registerModule('layers', new ModuleList(Array.from({ length: c.numLayers }, () => new SiglipEncoderLayer(c))));
  }
}

export class SiglipVisionTransformer extends Module {
  readonly embeddings: SiglipEmbeddings;
  readonly encoder: SiglipEncoder;
  readonly post_layernorm: LayerNorm;
  constructor(c: VitConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new SiglipEmbeddings(c));
    this.encoder = this.registerModule('encoder', new SiglipEncoder(c));
    this.post_layernorm = this.registerModule('post_layernorm', new LayerNorm(c.hiddenSize, c.layerNormEps));
  }
}

/** The ViT (keys `vision_model.*`; BAGEL stores it under `vit_model.`). */
export class SiglipVisionModel extends Module {
  readonly vision_model: SiglipVisionTransformer;
  /** Recompute each encoder layer in backward instead of keeping its activations (docs/precision.md section 3). */
  activationCheckpointing = false;
  constructor(readonly config: VitConfig) {
    super();
    this.vision_model = this.registerModule('vision_model', new SiglipVisionTransformer(config));
  }
  /**
   * patches: [N, p*p*c] rows of several images packed (patchify order), positionIds: [N]
   * flattened 2-D ids, lens: patches per image. Returns post-LayerNormed features [N, D].
   */
  forward(patches: Tensor, positionIds: Tensor, lens: number[]): Tensor {
    return scope(() => {
      const vm = this.vision_model;
      let h = vm.embeddings.forward(patches, positionIds);
      const recompute = this.activationCheckpointing && isGradEnabled();
      for (const layer of vm.encoder.layers) {
        h = recompute
          ? checkpoint((t) => layer.forward(t[0]!, lens), [h], { hasTrainableParameters: layer.parameters().some((p) => p.requiresGrad) }) as Tensor
          : layer.forward(h, lens);
      }
      return vm.post_layernorm.forward(h);
    });
  }
}

/** Linear(vit -> llm), GELU-tanh, Linear(llm -> llm) (keys connector.fc1, connector.fc2). */
export class MLPConnector extends Module {
  readonly fc1: Linear;
  readonly act: GELU;
  readonly fc2: Linear;
  constructor(inDim: number, outDim: number) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(inDim, outDim));
    this.act = new GELU('tanh');
    this.fc2 = this.registerModule('fc2', new Linear(outDim, outDim));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.fc2.forward(this.act.forward(this.fc1.forward(x))));
  }
}
