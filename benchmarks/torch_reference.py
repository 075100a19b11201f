#!/usr/bin/env python3
"""PyTorch reference for `alignscope bench`: the same workload in PyTorch eager, side by side (developer tooling,
never run by tests; `make bench` runs it when a Python with torch, transformers and gguf is available).

The same model (transformers loads and dequantises the same GGUF to float32), the same token ids, the same
shapes and thread count as `alignscope bench` (Sources/Benchmarks/RunBenchmarks.swift, `Workload`):

  train step   4 sequences x 256 tokens, next-token loss on the 255 targets of each sequence (mean NLL),
               forward + backward + torch.optim.AdamW(lr 1e-5, betas (0.9, 0.999), eps 1e-8, weight_decay 0)
  scoring      a 64-token prompt run once with use_cache, then 6 responses of 48 tokens each scored from a
               crop of that cache (DynamicCache.crop); also each (prompt, response) from scratch, and all 6
               pairs as one [6, 112] batch
  generation   model.generate(prompt, max_new_tokens=64, min_new_tokens=64, do_sample=False) (KV cache)
  memory       peak resident memory of the process (includes loading the GGUF), and the peak during the
               training steps alone (VmHWM after resetting it through /proc/self/clear_refs, Linux)

token id i of a stream with salt s is (i * 2654435761 + s) mod 2^64 mod vocab, as in Swift.
Medians of --repeats measurements after one warm-up each.

Side by side (alternating, in one session) with the Swift benchmark:

  /work/refvenv/bin/python benchmarks/torch_reference.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --rounds 3 --json side-by-side.json \
      --swift '.build/release/alignscope bench --model models/SmolLM2-135M-Instruct.Q4_1.gguf --json --repeats 3'

Each round runs the Swift command (which must print a BenchReport as JSON on stdout), then the PyTorch
measurements, and prints Swift/PyTorch ratios; the summary gives medians over the rounds. The model is loaded
once, before the first round.
"""
import argparse
import contextlib
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time

SEQS, SEQ_LEN = 4, 256
PROMPT, RESPONSES, RESPONSE_LEN, GENERATED = 64, 6, 48, 64


def tokens(count, salt, vocab):
    return [((i * 2654435761 + salt) % (1 << 64)) % vocab for i in range(count)]


def median_time(repeats, fn):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def reset_peak_rss():
    """Resets the kernel's peak-RSS mark (Linux >= 4.0), so the next peak_rss() covers what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss():
    """VmHWM of this process in bytes (ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def load(path, threads, attn):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    d, f = os.path.split(os.path.abspath(path))
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation=attn)
    if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        model.tie_weights()  # the GGUF has no output.weight: the head is the embedding
    return model


def train_steps(model, ids, opt, repeats, warmup, log, label, context):
    """`warmup` unmeasured then `repeats` measured AdamW steps, the forward inside `context()`; medians."""
    parts = []
    for r in range(repeats + warmup):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        with context():
            loss = model(input_ids=ids, labels=ids).loss  # shifts internally: 255 targets per sequence, mean
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if r >= warmup:
            parts.append((t1 - t0, t2 - t1, t3 - t2))
            log(f"{label} {r + 1 - warmup}/{repeats}: {t3 - t0:.3f} s")
        else:
            log(f"{label} (warm-up) {r + 1}/{warmup}: {t3 - t0:.3f} s")
    return {"step_s": statistics.median([a + b + c for a, b, c in parts]),
            "forward_s": statistics.median([p[0] for p in parts]),
            "backward_s": statistics.median([p[1] for p in parts]),
            "optimizer_s": statistics.median([p[2] for p in parts])}


def measure(model, repeats, log, warmup=3):
    import torch

    vocab = model.config.vocab_size
    out = {"threads": torch.get_num_threads(), "attn_implementation": model.config._attn_implementation,
           "torch": torch.__version__}

    # Training step.
    if os.environ.get("BENCH_SKIP_TRAIN"):  # for checking the script quickly
        out["train"] = {"step_s": 1, "forward_s": 1, "backward_s": 1, "optimizer_s": 1, "tokens_per_s": 1}
        out["train_bf16"] = {"step_s": 1, "forward_s": 1, "backward_s": 1, "optimizer_s": 1}
        return measure_inference(model, repeats, log, out)
    model.train()
    reset_peak_rss()
    ids = torch.tensor(tokens(SEQS * SEQ_LEN, 1, vocab)).view(SEQS, SEQ_LEN)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    out["train"] = train_steps(model, ids, opt, repeats, warmup, log, "torch train step", contextlib.nullcontext)
    out["train"]["tokens_per_s"] = SEQS * SEQ_LEN / out["train"]["step_s"]
    out["train"]["peak_rss_bytes"] = peak_rss()
    # The same step under bf16 autocast (CPU): matrix products in bf16, fp32 weights and optimizer,
    # backward outside the autocast region as PyTorch recommends. AlignScope's `precision: "bf16"` peer.
    out["train_bf16"] = train_steps(model, ids, opt, repeats, warmup, log, "torch bf16 autocast train step",
                                    lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    del opt
    model.zero_grad(set_to_none=True)
    out["train_lora"] = lora_steps(model, ids, repeats, warmup, log)
    return measure_inference(model, repeats, log, out)


def lora_steps(model, ids, repeats, warmup, log):
    """PEFT's LoRA step, AlignScope's bench peer: rank 16, alpha 32, no dropout, on every projection, AdamW over the
    adapters only; the adapters are removed afterwards (`unload`), leaving the base for the inference figures."""
    import torch
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        log("peft not installed: no LoRA step")
        return None
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets, task_type="CAUSAL_LM"))
    peft_model.train()
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    result = train_steps(peft_model, ids, opt, repeats, warmup, log, "torch PEFT LoRA train step", contextlib.nullcontext)
    result["trainable_parameters"] = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    del opt
    peft_model.unload()
    for p in model.parameters():
        p.requires_grad_(True)
    return result


def measure_inference(model, repeats, log, out):
    import torch

    vocab = model.config.vocab_size
    model.eval()

    # Scoring.
    prompt = torch.tensor([tokens(PROMPT, 2, vocab)])
    responses = [torch.tensor([tokens(RESPONSE_LEN, 3 + j, vocab)]) for j in range(RESPONSES)]

    def gather(logits, targets):
        return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def shared():
        with torch.inference_mode():
            o = model(input_ids=prompt, use_cache=True)
            cache, last = o.past_key_values, o.logits[:, -1:]
            for r in responses:
                o2 = model(input_ids=r[:, :-1], past_key_values=cache, use_cache=True)
                gather(torch.cat([last, o2.logits], dim=1), r)
                cache.crop(-(r.shape[1] - 1))  # back to the prompt (transformers 5: negative = tokens to drop)

    def separate():
        with torch.inference_mode():
            for r in responses:
                seq = torch.cat([prompt, r], dim=1)
                gather(model(input_ids=seq).logits[:, PROMPT - 1:-1], r)

    batch = torch.cat([torch.cat([prompt, r], dim=1) for r in responses], dim=0)

    def batched():
        with torch.inference_mode():
            gather(model(input_ids=batch).logits[:, PROMPT - 1:-1], batch[:, PROMPT:])

    s = median_time(repeats, shared)
    sep = median_time(repeats, separate)
    b = median_time(repeats, batched)
    total = PROMPT + RESPONSES * RESPONSE_LEN
    out["scoring"] = {"shared_s": s, "shared_tokens_per_s": total / s, "separate_s": sep, "batched_s": b}
    log(f"torch scoring: shared {s:.3f} s, separate {sep:.3f} s, batched {b:.3f} s")

    # Generation.
    mask = torch.ones_like(prompt)

    def gen():
        with torch.inference_mode():
            model.generate(input_ids=prompt, attention_mask=mask, max_new_tokens=GENERATED,
                           min_new_tokens=GENERATED, do_sample=False, pad_token_id=0)

    g = median_time(repeats, gen)
    out["generation"] = {"seconds": g, "tokens_per_s": GENERATED / g}
    log(f"torch generation: {g:.3f} s")
    out["peak_rss_bytes"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, peak_rss())
    return out


def engine(sw, label):
    """The Swift report's figures for one engine ("oneDNN fp32", "OpenBLAS fp32", "oneDNN bf16"), or None."""
    return next((e for e in sw.get("engines", []) if e["label"] == label), None)


def ratios(sw, pt):
    """Swift / PyTorch time ratios (< 1: Swift is faster) and the Swift figures they come from."""
    bf16 = engine(sw, "oneDNN bf16")
    openblas = engine(sw, "OpenBLAS fp32")
    out = {
        "train_step": sw["training"]["stepSeconds"] / pt["train"]["step_s"],
        "train_forward": sw["training"]["forwardSeconds"] / pt["train"]["forward_s"],
        "train_backward": sw["training"]["backwardSeconds"] / pt["train"]["backward_s"],
        "train_optimizer": sw["training"]["optimizerSeconds"] / pt["train"]["optimizer_s"],
        "scoring_shared": sw["scoring"]["sharedSeconds"] / pt["scoring"]["shared_s"],
        "scoring_separate": sw["scoring"]["separateSeconds"] / pt["scoring"]["separate_s"],
        "scoring_packed_vs_batched": sw["scoring"]["packedSeconds"] / pt["scoring"]["batched_s"],
        "generation": sw["generation"]["seconds"] / pt["generation"]["seconds"],
        "mfu_swift": sw["training"]["mfu"],
        "mfu_torch": sw["training"]["flopsPerStep"] / pt["train"]["step_s"] / 1e9 / sw["training"]["sgemmGflopsDuringSteps"],
    }
    if openblas:
        out["train_step_openblas"] = openblas["training"]["stepSeconds"] / pt["train"]["step_s"]
    if bf16 and "train_bf16" in pt:
        out["train_step_bf16_vs_torch_bf16"] = bf16["training"]["stepSeconds"] / pt["train_bf16"]["step_s"]
        out["train_step_bf16_vs_own_fp32"] = bf16["training"]["stepSeconds"] / sw["training"]["stepSeconds"]
    return out


def summary(rounds, args):
    """One table: each figure's median over the rounds for both implementations, and the median ratio."""
    med = statistics.median
    pt = [r["torch"] for r in rounds]
    print(f"PyTorch {pt[0]['torch']} eager ({pt[0]['attn_implementation']} attention), {pt[0]['threads']} threads; "
          f"medians of {args.repeats} per round, {len(rounds)} round(s); load average at each round's start: "
          + ", ".join("%.2f" % r["load_before"] for r in rounds))
    rows = [  # label, PyTorch figure, Swift figure (None without --swift), unit
        ("train step 4x256", lambda p: p["train"]["step_s"], lambda s: s["training"]["stepSeconds"], "s"),
        ("  forward", lambda p: p["train"]["forward_s"], lambda s: s["training"]["forwardSeconds"], "s"),
        ("  backward", lambda p: p["train"]["backward_s"], lambda s: s["training"]["backwardSeconds"], "s"),
        ("  AdamW", lambda p: p["train"]["optimizer_s"], lambda s: s["training"]["optimizerSeconds"], "s"),
        ("train step, OpenBLAS engine vs PyTorch fp32", lambda p: p["train"]["step_s"],
         lambda s: engine(s, "OpenBLAS fp32")["training"]["stepSeconds"] if engine(s, "OpenBLAS fp32") else float("nan"), "s"),
        ("train step bf16 (PyTorch: autocast)", lambda p: p.get("train_bf16", {}).get("step_s", float("nan")),
         lambda s: engine(s, "oneDNN bf16")["training"]["stepSeconds"] if engine(s, "oneDNN bf16") else float("nan"), "s"),
        ("LoRA step r16, 7 projections (PyTorch: PEFT)", lambda p: (p.get("train_lora") or {}).get("step_s", float("nan")),
         lambda s: (s.get("lora") or {}).get("stepSeconds", float("nan")), "s"),
        ("scoring, shared prompt cache", lambda p: p["scoring"]["shared_s"], lambda s: s["scoring"]["sharedSeconds"], "s"),
        ("scoring, each pair separately", lambda p: p["scoring"]["separate_s"], lambda s: s["scoring"]["separateSeconds"], "s"),
        ("scoring, one batch / packed", lambda p: p["scoring"]["batched_s"], lambda s: s["scoring"]["packedSeconds"], "s"),
        ("generation, 64 tokens greedy", lambda p: p["generation"]["seconds"], lambda s: s["generation"]["seconds"], "s"),
        ("peak RSS, whole process (PyTorch: with loading)", lambda p: p["peak_rss_bytes"] / 2**20, lambda s: s["peakResidentBytes"] / 2**20, "MiB"),
        ("peak RSS, training steps only", lambda p: p["train"].get("peak_rss_bytes", 0) / 2**20, None, "MiB"),
    ]
    sw = [r["swift"] for r in rounds if "swift" in r]
    print(f"  {'':48s} {'AlignScope':>12s} {'PyTorch':>12s} {'ratio':>8s}")
    for label, pfig, sfig, unit in rows:
        p = med([pfig(x) for x in pt])
        if sw and sfig:
            s = med([sfig(x) for x in sw])
            ratio = med([sfig(r["swift"]) / pfig(r["torch"]) for r in rounds if pfig(r["torch"]) > 0])
            print(f"  {label:48s} {s:10.3f} {unit:3s} {p:10.3f} {unit:3s} {ratio:8.3f}")
        else:
            print(f"  {label:48s} {'':14s} {p:10.3f} {unit:3s}")
    if sw:
        print("  ratio = AlignScope / PyTorch, median of the per-round ratios (< 1: AlignScope faster or smaller)")
        print(f"  MFU (model FLOPs / sgemm measured beside each step): AlignScope "
              f"{100 * med([r['ratios']['mfu_swift'] for r in rounds]):.0f}%, PyTorch "
              f"{100 * med([r['ratios']['mfu_torch'] for r in rounds]):.0f}%; sgemm 1024^3 "
              f"{med([s['training']['sgemmGflopsDuringSteps'] for s in sw]):.1f} GFLOP/s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3,
                    help="unmeasured training steps first (PyTorch's steps still speed up over the first 3-4)")
    ap.add_argument("--attn", default="sdpa", help="transformers attn_implementation (sdpa = default, eager)")
    ap.add_argument("--rounds", type=int, default=1, help="alternations with --swift")
    ap.add_argument("--swift", help="command printing a BenchReport JSON (rounds alternate which runs first)")
    ap.add_argument("--json", help="write all measurements and ratios to this file")
    args = ap.parse_args()

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {msg}", file=sys.stderr, flush=True)

    model = load(args.model, args.threads, args.attn)
    rounds = []
    for i in range(args.rounds if args.swift else 1):
        rec = {"load_before": os.getloadavg()[0], "started": time.strftime("%Y-%m-%d %H:%M:%S")}

        def run_swift():
            log(f"round {i + 1}: swift: {args.swift}")
            res = subprocess.run(shlex.split(args.swift), capture_output=True, text=True, check=True)
            rec["swift"] = json.loads(res.stdout[res.stdout.index("{"):])

        def run_torch():
            log(f"round {i + 1}: pytorch")
            rec["torch"] = measure(model, args.repeats, log, args.warmup)

        # Alternate which one goes first, so neither always runs right after the other's load.
        order = [run_swift, run_torch] if i % 2 == 0 else [run_torch, run_swift]
        for run in order if args.swift else [run_torch]:
            run()
        if args.swift:
            rec["ratios"] = ratios(rec["swift"], rec["torch"])
            log("ratios (Swift time / PyTorch time): " + ", ".join(f"{k} {v:.3f}" for k, v in rec["ratios"].items()))
        rec["load_after"] = os.getloadavg()[0]
        rounds.append(rec)
        if args.json:  # after every round, so an interrupted session keeps what it measured
            with open(args.json, "w") as f:
                json.dump(rounds, f, indent=1)

    summary(rounds, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rounds, f, indent=1)


if __name__ == "__main__":
    main()
