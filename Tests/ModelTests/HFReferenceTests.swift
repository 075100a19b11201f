import XCTest
@testable import Model

/// The forward pass against Hugging Face transformers' `LlamaForCausalLM` (float32, torch 2, eager), given the
/// same weights: Q/K rows converted from the GGUF (adjacent-pair RoPE) order to the HF order by the inverse
/// of llama.cpp's conversion permutation. This pins down the conventions (RoPE pairing and angles, GQA head
/// mapping, RMSNorm, SwiGLU, tied head) against an independent implementation. The numbers were produced
/// by the script at the end of this file from this model's parameters (dumped as raw float32).
final class HFReferenceTests: XCTestCase {
    func testLogprobsMatchTransformersLlama() {
        let cfg = LlamaConfig(vocabSize: 259, dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, ropeBase: 1000,
                              normEps: 1e-5, tiedEmbedding: true, contextLength: 64)
        let m = LlamaModel(config: cfg, maxTokens: 64)
        m.initializeRandom(seed: 5, std: 0.15)
        for i in 0..<64 { m.parameter("blk.0.attn_norm.weight")[i] = 1 + 0.01 * Float(i) }
        // Two packed sequences; HF scored each on its own.
        let batch = TokenBatch(tokens: [256, 10, 20, 30, 40, 50, 60, 70, 256, 5, 6, 7, 8],
                               targets: [10, 20, 30, 40, 50, 60, 70, -1, 5, 6, 7, 8, -1], sequenceStarts: [0, 8])
        let reference: [Double] = [
            -7.493307091308706,
            -6.503367269272378,
            -5.333991317566303,
            -6.701682060587318,
            -5.785120118119242,
            -5.79721520019968,
            -7.2287548922798255,
            0.0,
            -4.5522340312730005,
            -6.434586758103599,
            -4.8124929825089,
            -7.282819444142981,
            0.0,
        ]
        let lp = m.forward(batch, training: false)
        for t in reference.indices {
            XCTAssertEqual(Double(lp[t]), reference[t], accuracy: 1e-4, "position \(t)")
        }
    }
}

/* Reference script (Python, /work/refvenv: numpy, torch, transformers); max |difference| was 1.7e-6.
import numpy as np, torch
from transformers import LlamaConfig, LlamaForCausalLM
p = np.fromfile('/tmp/eng_params.bin', dtype=np.float32)
off = 0; W = {}
for line in open('/tmp/eng_table.txt').read().strip().split('\n'):
    name, shape = line.split(' '); shape = [int(x) for x in shape.split(',')]
    n = int(np.prod(shape)); W[name] = p[off:off+n].reshape(shape); off += n
assert off == p.size
nh, nkv, hd = 4, 2, 16
cfg = LlamaConfig(vocab_size=259, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=nh,
                  num_key_value_heads=nkv, rms_norm_eps=1e-5, rope_theta=1000.0, tie_word_embeddings=True,
                  max_position_embeddings=64, attention_bias=False, mlp_bias=False)
model = LlamaForCausalLM(cfg).eval()
def unpermute(w, h):  # GGUF (adjacent pairs) -> HF (rotate_half) row order
    return w.reshape(h, hd // 2, 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)
sd = {'model.embed_tokens.weight': W['token_embd.weight'], 'model.norm.weight': W['output_norm.weight'],
      'lm_head.weight': W['token_embd.weight']}
for i in range(2):
    b = f'blk.{i}.'; m = f'model.layers.{i}.'
    sd[m+'input_layernorm.weight'] = W[b+'attn_norm.weight']
    sd[m+'self_attn.q_proj.weight'] = unpermute(W[b+'attn_q.weight'], nh)
    sd[m+'self_attn.k_proj.weight'] = unpermute(W[b+'attn_k.weight'], nkv)
    sd[m+'self_attn.v_proj.weight'] = W[b+'attn_v.weight']
    sd[m+'self_attn.o_proj.weight'] = W[b+'attn_output.weight']
    sd[m+'post_attention_layernorm.weight'] = W[b+'ffn_norm.weight']
    sd[m+'mlp.gate_proj.weight'] = W[b+'ffn_gate.weight']
    sd[m+'mlp.up_proj.weight'] = W[b+'ffn_up.weight']
    sd[m+'mlp.down_proj.weight'] = W[b+'ffn_down.weight']
model.load_state_dict({k: torch.tensor(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=False)
ours = [float(x) for x in open('/tmp/eng_lp.txt').read().split()]
seqs = [([256, 10, 20, 30, 40, 50, 60, 70]), ([256, 5, 6, 7, 8])]
ref = []
with torch.no_grad():
    for s in seqs:
        lp = torch.log_softmax(model(torch.tensor([s])).logits[0].double(), -1)
        ref += [lp[t, s[t+1]].item() for t in range(len(s)-1)] + [0.0]
print('max abs diff', max(abs(a-b) for a, b in zip(ours, ref)))
print(ref)
*/
