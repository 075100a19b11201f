#!/usr/bin/env python3
"""Hugging Face model directories and reference numbers for the HF loader's tests (developer tooling;
never run by tests or the product).

Builds, with `tokenizers` and `transformers`:
- two small byte-level BPE tokenizers trained on the texts of our own data
  (experiments/data/helpful-train.jsonl): `gpt2` style (ByteLevel pre-tokenizer with the GPT-2 regex)
  and `smollm` style (digits split one by one, then ByteLevel), each with the special tokens
  <|endoftext|>, <|im_start|>, <|im_end|>;
- random-weight LlamaForCausalLM models (2 layers, hidden 64, 4 heads, 2 KV heads, head 16, FFN 128):
    llama-tiny/               F32, one model.safetensors, tied embeddings, gpt2-style tokenizer
    llama-tiny-bf16-sharded/  BF16, two shards + model.safetensors.index.json, untied output head,
                              rope_theta 50000, smollm-style tokenizer
    qwen2-tiny/               Qwen2ForCausalLM (biases on Q, K, V), F32, untied, rope_theta 1e6, qwen2-style tokenizer
                              (NFC normalizer, Split with Qwen2's pattern, ByteLevel without regex)
    gpt-neox-tiny/            GPTNeoXForCausalLM (Pythia's block: LayerNorm with bias, parallel residual, RoPE on a
                              quarter of each head, GELU, biases everywhere, untied embed_out), F32, gpt2-style
                              tokenizer with <|endoftext|> as its only special token (BOS and EOS; no ChatML
                              tokens) and runs of spaces as added tokens, as Pythia's has (4 heads, no grouped KV)
    gpt-neox-tiny-sequential/ the same block with use_parallel_residual false, RoPE on half of each head,
                              rope_theta 20000, F16
and gpt-neox-tiny.gguf, the GPT-NeoX model as llama.cpp's converter lays a gptneox GGUF out (fused Q|K|V
regrouped q | k | v), and qwen2-tiny.gguf, the qwen2 model as llama.cpp's converter lays a qwen2 GGUF out (`qwen2.*` keys, Q/K
left in half-split order, tokenizer pre "qwen2"), and writes Tests/HFModelsTests/Fixtures/reference.json: for every directory, the token ids
transformers' tokenizer gives for a set of strings, and the float32 logits at every position of a few
prompts of the directory loaded back with `from_pretrained(dtype=float32)` (bf16 weights upcast, as
AlignScope reads them).

Usage: /work/refvenv/bin/python scripts/make-hf-fixtures.py
"""
import importlib.metadata
import json
import pathlib
import shutil

import gguf
import numpy as np
import torch
from safetensors.numpy import load_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM)

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests/HFModelsTests/Fixtures"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# The pre-tokenizer pattern of Qwen2's tokenizers (a fact of the format, written out here).
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

STRINGS = [
    "Hello world",
    " leading space and  two spaces",
    "Numbers 12345 and 3.14, dates 2024-01-31.",
    "It's we're they'll I'd you've",
    "Tabs\tand\nnew lines\r\n\n  indented",
    "Ünïcödé: café, naïve, 日本語, emoji 🙂!",
    "<|im_start|>user\nHow do I boil an egg?<|im_end|>\n<|im_start|>assistant\n",
    "symbols: #$%&*()[]{}<>/\\|~`^",
    "",
    "a",
    "IT'S WE'RE 'S 'Re 'LL 'd",
    "!hello ?World \thello ,x",
    "x\n\n  y and a  \n b\r\n\r\nc",
    "123 4567 and 3.14!!\n\nNext",
    "cafe\u0301 and e\u0301te\u0301 (decomposed accents)",
    "   trailing spaces   ",
]
PROMPTS = [
    "<|im_start|>user\nHow do I water a cactus?<|im_end|>\n<|im_start|>assistant\nWater it",
    "Why is the sky blue? Because 42",
]


def corpus():
    for line in (ROOT / "experiments/data/helpful-train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for key in ("prompt", "chosen", "rejected"):
            value = row.get(key)
            if isinstance(value, str):
                yield value


def train_tokenizer(style: str, eos: str = "<|im_end|>", bos: str = "<|im_start|>", specials=SPECIALS) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    if style == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    elif style == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos,
                                   unk_token=None, pad_token="<|endoftext|>")


def build(name: str, style: str, dtype: torch.dtype, tied: bool, rope_theta: float, shard: str | None, seed: int,
          architecture: str = "llama", neox_parallel: bool = True, neox_rotary: float = 0.25) -> dict:
    if architecture == "gpt_neox":  # Pythia's tokenizer has no chat tokens of its own: <|endoftext|> ends a text
        tokenizer = train_tokenizer(style, eos="<|endoftext|>", bos="<|endoftext|>", specials=["<|endoftext|>"])
        # and, like it, runs of spaces as added (non-special) tokens, matched whole before pre-tokenization
        tokenizer.add_tokens(["  ", "    ", "\t\t"])
    else:
        tokenizer = train_tokenizer(style)
    torch.manual_seed(seed)
    if architecture == "gpt_neox":
        config_class, model_class = GPTNeoXConfig, GPTNeoXForCausalLM
        config = config_class(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=256, layer_norm_eps=1e-5, tie_word_embeddings=tied, hidden_act="gelu",
            use_parallel_residual=neox_parallel,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta, "partial_rotary_factor": neox_rotary},
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    else:
        config_class, model_class = (LlamaConfig, LlamaForCausalLM) if architecture == "llama" else (Qwen2Config, Qwen2ForCausalLM)
        config = config_class(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=tied,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = model_class(config)
    with torch.no_grad():  # larger than the default init, so that logits differ visibly between tokens
        for name_, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.25)
            elif name_.endswith(".bias"):
                p.normal_(0.0, 0.5)
            elif architecture == "gpt_neox":  # LayerNorm weights: not all ones, so a transposed use would show
                p.normal_(1.0, 0.2)
    model = model.to(dtype)
    path = OUT / name
    shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(path, max_shard_size=shard) if shard else model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    # The reference reads the directory back in float32, as a user would: `.float()` on the bf16 model would
    # keep its rotary frequencies rounded to bf16 (a buffer cast with the weights), which no loader does.
    model = model_class.from_pretrained(path, dtype=torch.float32).eval()
    out = {"tokenizer_style": style, "dtype": str(dtype).removeprefix("torch."), "tied": tied, "files": sorted(p.name for p in path.iterdir()),
           "strings": [], "prompts": []}
    for s in STRINGS:
        out["strings"].append({"text": s, "ids": tokenizer(s, add_special_tokens=False)["input_ids"]})
    for s in PROMPTS:
        ids = tokenizer(s, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        out["prompts"].append({"text": s, "ids": ids, "logits": [[round(v, 6) for v in row] for row in logits.tolist()]})
    return out


def add_tokenizer(w, config: dict, tok: dict, pre: str) -> None:
    """GPT-2-style tokenizer metadata as llama.cpp's converter writes it: special added tokens CONTROL (3),
    other added tokens USER_DEFINED (4, stored as their raw text), the rest NORMAL (1)."""
    vocab = {i: t for t, i in tok["model"]["vocab"].items()}
    special = {t["id"] for t in tok["added_tokens"] if t["special"]}
    added = {t["id"] for t in tok["added_tokens"]}
    for t in tok["added_tokens"]:
        vocab[t["id"]] = t["content"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list([vocab[i] for i in range(config["vocab_size"])])
    w.add_token_types([3 if i in special else 4 if i in added else 1 for i in range(config["vocab_size"])])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    w.add_eos_token_id(config["eos_token_id"])


def write_qwen2_gguf(hf: pathlib.Path, out: pathlib.Path) -> None:
    """The qwen2 fixture as llama.cpp's converter lays a qwen2 GGUF out: `qwen2.*` keys, GGUF tensor names,
    Q/K rows left in transformers' (half-split) order, GPT-2-style tokenizer metadata with pre "qwen2"."""
    config = json.loads((hf / "config.json").read_text())
    tok = json.loads((hf / "tokenizer.json").read_text())
    w = gguf.GGUFWriter(str(out), "qwen2")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(config["num_attention_heads"])
    w.add_head_count_kv(config["num_key_value_heads"])
    w.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_file_type(0)
    add_tokenizer(w, config, tok, "qwen2")
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    tensors = load_file(str(hf / "model.safetensors"))
    for name in sorted(tensors):
        if name == "model.embed_tokens.weight":
            gname = "token_embd.weight"
        elif name == "model.norm.weight":
            gname = "output_norm.weight"
        elif name == "lm_head.weight":
            gname = "output.weight"
        else:
            parts = name.split(".")  # model.layers.i.<module...>.weight|bias
            gname = f"blk.{parts[2]}.{names['.'.join(parts[3:-1])]}.{parts[-1]}"
        w.add_tensor(gname, np.ascontiguousarray(tensors[name].astype(np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_gptneox_gguf(hf: pathlib.Path, out: pathlib.Path) -> None:
    """The GPT-NeoX fixture as llama.cpp's converter lays a gptneox GGUF out: `gptneox.*` keys (rope dimension
    count = rotary fraction x head size, use_parallel_residual, layer_norm_epsilon), the fused Q|K|V regrouped
    from rows per head (q_h, k_h, v_h) to all q, all k, all v, Q/K rows otherwise left in transformers'
    (half-split) order, GPT-2-style tokenizer metadata with pre "gpt-2"."""
    config = json.loads((hf / "config.json").read_text())
    tok = json.loads((hf / "tokenizer.json").read_text())
    n_head, n_embd = config["num_attention_heads"], config["hidden_size"]
    head = n_embd // n_head
    w = gguf.GGUFWriter(str(out), "gptneox")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(n_embd)
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_rope_dimension_count(int(config["rope_parameters"]["partial_rotary_factor"] * head))
    w.add_head_count(n_head)
    w.add_parallel_residual(config["use_parallel_residual"])
    w.add_layer_norm_eps(config["layer_norm_eps"])
    w.add_file_type(0)
    add_tokenizer(w, config, tok, "gpt-2")
    names = {"input_layernorm": "attn_norm", "attention.query_key_value": "attn_qkv", "attention.dense": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.dense_h_to_4h": "ffn_up", "mlp.dense_4h_to_h": "ffn_down"}
    tensors = load_file(str(hf / "model.safetensors"))
    for name in sorted(tensors):
        data = tensors[name].astype(np.float32)
        if name == "gpt_neox.embed_in.weight":
            gname = "token_embd.weight"
        elif name.startswith("gpt_neox.final_layer_norm."):
            gname = "output_norm." + name.split(".")[-1]
        elif name == "embed_out.weight":
            gname = "output.weight"
        else:
            parts = name.split(".")  # gpt_neox.layers.i.<module...>.weight|bias
            gname = f"blk.{parts[2]}.{names['.'.join(parts[3:-1])]}.{parts[-1]}"
            if gname.endswith("attn_qkv.weight"):
                data = data.reshape(n_head, 3, head, n_embd).transpose(1, 0, 2, 3).reshape(3 * n_embd, n_embd)
            elif gname.endswith("attn_qkv.bias"):
                data = data.reshape(n_head, 3, head).transpose(1, 0, 2).reshape(3 * n_embd)
        w.add_tensor(gname, np.ascontiguousarray(data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    reference = {
        "versions": {p: importlib.metadata.version(p) for p in ("torch", "transformers", "tokenizers", "safetensors")},
        "models": {
            "llama-tiny": build("llama-tiny", "gpt2", torch.float32, True, 10000.0, None, 1),
            "llama-tiny-bf16-sharded": build("llama-tiny-bf16-sharded", "smollm", torch.bfloat16, False, 50000.0, "100KB", 2),
            "qwen2-tiny": build("qwen2-tiny", "qwen2", torch.float32, False, 1000000.0, None, 3, architecture="qwen2"),
            "gpt-neox-tiny": build("gpt-neox-tiny", "gpt2", torch.float32, False, 10000.0, None, 4, architecture="gpt_neox"),
            "gpt-neox-tiny-sequential": build("gpt-neox-tiny-sequential", "gpt2", torch.float16, False, 20000.0, None, 5,
                                              architecture="gpt_neox", neox_parallel=False, neox_rotary=0.5),
        },
    }
    write_qwen2_gguf(OUT / "qwen2-tiny", OUT / "qwen2-tiny.gguf")
    write_gptneox_gguf(OUT / "gpt-neox-tiny", OUT / "gpt-neox-tiny.gguf")
    (OUT / "reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, model in reference["models"].items():
        print(name, model["files"])


if __name__ == "__main__":
    main()
