#!/usr/bin/env python3
"""Checks a GGUF written by AlignScope's exportGGUF with an independent loader (developer tooling).

Loads the original GGUF and the exported one with transformers (which reads GGUF through the `gguf`
package, dequantises, and rebuilds the tokenizer from the tokenizer.* metadata), then compares the
tokenizers and the logits on a few prompts. The export of the unmodified model should give the same
token ids and (for F32) logits equal up to float rounding.

Produce the exports with:
  ALIGNSCOPE_KEEP_EXPORT=/tmp/smollm2-export.gguf swift test -c release -Xswiftc -enable-testing \
      --skip-build --filter RealModelMappingTests
which writes /tmp/smollm2-export.gguf (F32) and /tmp/smollm2-export-f16.gguf (F16). Then:
  /work/refvenv/bin/python scripts/gguf-export-check.py models/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2-export.gguf
"""
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "<|im_start|>user\nWhat is 17 + 25?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    ",
]


def load(path):
    d, f = os.path.split(os.path.abspath(path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    return tok, model


def main() -> None:
    original, exported = sys.argv[1], sys.argv[2]
    tok_a, model_a = load(original)
    tok_b, model_b = load(exported)
    worst = 0.0
    for text in PROMPTS:
        ids_a, ids_b = tok_a.encode(text), tok_b.encode(text)
        assert ids_a == ids_b, f"tokenizers differ on {text!r}: {ids_a} vs {ids_b}"
        with torch.no_grad():
            la = model_a(torch.tensor([ids_a])).logits
            lb = model_b(torch.tensor([ids_b])).logits
        diff = (la - lb).abs().max().item()
        worst = max(worst, diff)
        print(f"{len(ids_a):3d} tokens, max |logit diff| = {diff:.3g}, argmax equal: {bool((la.argmax(-1) == lb.argmax(-1)).all())}")
    print(f"worst max |logit diff|: {worst:.3g}")


if __name__ == "__main__":
    main()
