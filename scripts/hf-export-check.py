#!/usr/bin/env python3
"""Checks `alignscope export --format hf` with transformers (developer tooling; not run by tests).

1. Trains SmolLM2-135M-Instruct (the GGUF) for 2 SFT steps with AlignScope, exports the run as a
   Hugging Face directory and as a GGUF.
2. Trains the tiny llama, qwen2 and GPT-NeoX fixtures (Hugging Face directories, Tests/HFModelsTests/Fixtures;
   GPT-NeoX also from its gptneox GGUF) for 2 steps each and exports them as Hugging Face directories
   (GPT-NeoX with the hh template: Pythia has no chat template).
3. Loads each exported directory with transformers' AutoModelForCausalLM / AutoTokenizer and scores a
   few (prompt, response) pairs under the ChatML template, token by token, beside AlignScope's
   `score --tokens` of the same directory (and, for SmolLM2, of the exported GGUF).
Writes docs/perf/hf-export-check.json: token ids equal or not, and the largest |log p| differences.

Usage: /work/refvenv/bin/python scripts/hf-export-check.py [ALIGNSCOPE_BINARY]
"""
import importlib.metadata
import json
import pathlib
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".build/release/alignscope")
OUT = ROOT / "docs/perf/hf-export-check.json"
PAIRS = [
    ("How do I boil an egg?", "Put it in boiling water for nine minutes, then cool it in cold water."),
    ("Why is the sky blue?", "Air scatters short blue wavelengths of sunlight more than red ones; 42 is not involved."),
    ("Name three prime numbers.", "2, 3 and 5 (also 7, 11, 13...)."),
]


def chatml(prompt, response):
    p = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
         f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n")
    return p, response + "<|im_end|>"


def hh(prompt, response):
    return f"\n\nHuman: {prompt}\n\nAssistant:", " " + response


def run_and_export(work: pathlib.Path, name: str, model_line: str, fmt: str, out: pathlib.Path, data: str = "experiments/data/helpful",
                   template: str = "chatml"):
    spec = work / f"{name}.json5"
    spec.write_text(f"""{{
  name: "{name}",
  model: {model_line},
  template: "{template}",
  data: {{ train: {{ path: "{ROOT}/{data}-train.jsonl" }},
          probes: {{ path: "{ROOT}/{data}-probes.jsonl", categories: {{ chosen: "chosen" }} }} }},
  train: {{ steps: 2, batch_size: 2, lr: 1e-4, max_length: 128 }},
  eval: {{ every: 2, at_start: false }},
}}
""")
    db = work / f"{name}.sqlite"
    subprocess.run([BIN, "run", str(spec), "--db", str(db)], check=True, capture_output=True)
    subprocess.run([BIN, "export", "--db", str(db), "--run", name, "--format", fmt, "--out", str(out)], check=True)


def ours(model: pathlib.Path, prompt: str, response: str):
    r = subprocess.run([BIN, "score", "--model", str(model), "--prompt", prompt, "--response", response, "--json", "--tokens"],
                       check=True, capture_output=True, text=True)
    d = json.loads(r.stdout)
    return d["token_ids"], d["token_logprobs"]


def theirs(tok, model, prompt: str, response: str):
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    r = tok(response, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([p + r])).logits[0].double()
    lp = torch.log_softmax(logits, dim=-1)
    return r, [lp[len(p) - 1 + i, t].item() for i, t in enumerate(r)]


def check(directory: pathlib.Path, extra_gguf: pathlib.Path | None, wrap=chatml):
    tok = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    result = {"ids_equal": True, "max_abs_token_logprob_diff": 0.0, "tokens": 0}
    if extra_gguf:
        result["max_abs_diff_vs_our_gguf_export"] = 0.0
    for prompt, response in PAIRS:
        p, r = wrap(prompt, response)
        ids_ours, lp_ours = ours(directory, p, r)
        ids_theirs, lp_theirs = theirs(tok, model, p, r)
        result["ids_equal"] &= ids_ours == ids_theirs
        result["tokens"] += len(ids_ours)
        if ids_ours == ids_theirs:
            result["max_abs_token_logprob_diff"] = max(result["max_abs_token_logprob_diff"],
                                                       max(abs(a - b) for a, b in zip(lp_ours, lp_theirs)))
        if extra_gguf:
            _, lp_gguf = ours(extra_gguf, p, r)
            result["max_abs_diff_vs_our_gguf_export"] = max(result["max_abs_diff_vs_our_gguf_export"],
                                                            max(abs(a - b) for a, b in zip(lp_ours, lp_gguf)))
    return result


def main() -> None:
    report = {"versions": {p: importlib.metadata.version(p) for p in ("torch", "transformers", "tokenizers", "safetensors")}}
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        gguf = ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
        run_and_export(work, "smollm-hf", f'{{ gguf: "{gguf}" }}', "hf", work / "smollm-hf-out")
        subprocess.run([BIN, "export", "--db", str(work / "smollm-hf.sqlite"), "--run", "smollm-hf", "--out", str(work / "smollm.gguf")], check=True)
        report["smollm2_gguf_run_exported_hf"] = check(work / "smollm-hf-out", work / "smollm.gguf")
        fixture = ROOT / "Tests/HFModelsTests/Fixtures/llama-tiny"
        # the fixture's 400-token vocabulary makes our helpful data too long for its 256 positions: the tests' tiny data
        run_and_export(work, "tiny-hf", f'{{ hf: "{fixture}" }}', "hf", work / "tiny-hf-out", data="Tests/ExperimentsTests/Fixtures/tiny")
        report["tiny_hf_run_exported_hf"] = check(work / "tiny-hf-out", None)
        qwen = ROOT / "Tests/HFModelsTests/Fixtures/qwen2-tiny"
        run_and_export(work, "qwen2-hf", f'{{ hf: "{qwen}" }}', "hf", work / "qwen2-hf-out", data="Tests/ExperimentsTests/Fixtures/tiny")
        report["tiny_qwen2_hf_run_exported_hf"] = check(work / "qwen2-hf-out", None)
        # GPT-NeoX (Pythia's block) has no chat template: the run and the check use the hh format
        neox = ROOT / "Tests/HFModelsTests/Fixtures/gpt-neox-tiny"
        run_and_export(work, "neox-hf", f'{{ hf: "{neox}" }}', "hf", work / "neox-hf-out", data="Tests/ExperimentsTests/Fixtures/tiny",
                       template="hh")
        report["tiny_gpt_neox_hf_run_exported_hf"] = check(work / "neox-hf-out", None, wrap=hh)
        neox_gguf = ROOT / "Tests/HFModelsTests/Fixtures/gpt-neox-tiny.gguf"
        run_and_export(work, "neox-gguf", f'{{ gguf: "{neox_gguf}" }}', "hf", work / "neox-gguf-out",
                       data="Tests/ExperimentsTests/Fixtures/tiny", template="hh")
        report["tiny_gpt_neox_gguf_run_exported_hf"] = check(work / "neox-gguf-out", None, wrap=hh)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
