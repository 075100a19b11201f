#!/usr/bin/env python3
"""Reference fixtures for AlignScope's tokenizer and scorer, computed with Hugging Face transformers.

Developer tooling only: tests never run this script; they read the JSON it writes.

    /work/refvenv/bin/python scripts/make-reference.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]

Writes
  Tests/TokenizerTests/Fixtures/token-ids.json
      token ids (no special tokens added) for hand-written strings: `ids` with SmolLM2's `smollm`
      pre-tokenizer, and `ids_gpt2` from transformers' stock GGUF tokenizer (plain GPT-2 pattern),
      which checks AlignScope's `gpt2` pre-tokenizer on the same vocabulary.
  Tests/GGUFTests/Fixtures/reference-logprobs.json
      prompt/response pairs (plain text, ChatML- and HH-rendered as in CONTRACT.md), the ids of the
      prompt and of the response tokenised SEPARATELY (no BOS), and log p(response token | prompt +
      earlier response tokens) per token and summed, from the transformers model in float32.

The tokenizer and the model are both loaded from the same GGUF file with
`from_pretrained(dir, gguf_file=...)`; the model is dequantised to float32 (`dtype=torch.float32`;
transformers 5 renamed `torch_dtype`). Loading a GGUF model needs `accelerate` in the venv.

Checks made, discrepancies found and how they were resolved
-----------------------------------------------------------
1. Digits. SmolLM2's own tokenizer (and llama.cpp's `smollm` pre-tokenizer, which the GGUF names in
   `tokenizer.ggml.pre`) first splits every \\p{N} code point off on its own, then applies the GPT-2
   pattern. transformers' GGUF converter ignores `tokenizer.ggml.pre` and builds a plain
   `ByteLevel(use_regex=True)` pre-tokenizer WITHOUT the digit split. Most of the time the ids still
   agree, because the vocabulary has no multi-digit tokens and no "Ġ<digit>" merge, but whitespace
   in front of a digit is grouped differently, e.g. "\\n\\n1" gives [198, 198, 33] ("Ċ","Ċ","1") with the
   stock GGUF tokenizer and [1116, 33] ("ĊĊ","1") with the digit split, and "a  42" gives
   "Ġ","Ġ","4","2" instead of "ĠĠ","4","2"; " ½" is one word without the split. 4 of the 50 fixture
   strings tokenise differently.
   Resolution: this script replaces the backend pre-tokenizer with
   Sequence([Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)]),
   which is (as far as I know; the hub file was not fetched here) the pre-tokenizer of SmolLM2's
   tokenizer.json and is what llama.cpp's `smollm` does (\\p{N} first, then GPT-2), asserts
   that digits then come out one per token, and prints every fixture string whose ids the stock
   GGUF tokenizer would have produced differently (see `report_digit_split_differences`).
2. Control tokens. The 17 tokens of type 3 (control) in the GGUF (`<|endoftext|>`, `<|im_start|>`,
   `<|im_end|>`, `<repo_name>` ... `<empty_output>`) are registered by transformers as special added
   tokens and matched in the raw text before pre-tokenisation: checked below (each one alone encodes
   to its own id, and "<|im_start|>user" gives [1, 4093]). No discrepancy.
3. Chat template. The ChatML rendering of CONTRACT.md (`render_chatml`) is compared with
   `apply_chat_template(..., add_generation_prompt=True)` using the template stored in the GGUF;
   they agree for every ChatML pair (asserted). No discrepancy.
4. Bytes without a token. SmolLM2's vocabulary has no token for 21 of the 256 bytes: 0x04 0x06 0x13
   0x14 0x16 0x1D, 0xC0 0xC1 (never in UTF-8), 0xF1 0xF2 (lead bytes of planes 4-11, unassigned) and
   0xF5...0xFF (never in UTF-8). transformers' BPE (no unk token, no byte fallback) silently DROPS
   such a byte before merging, so its neighbours can merge: "!\\x04!" gives [10095] ("!!"), and
   "\\x04" alone gives []. (llama.cpp, as far as I read its source, not run here, keeps the byte as a
   symbol through the merges and drops it only at the end, so "!\\x04!" would give "!","!".) Resolution: the
   fixture follows transformers and AlignScope's BPETokenizer does the same; two fixture strings
   pin it down, and `report_missing_bytes` prints the list. Such text cannot round-trip through any of these tokenizers.
5. Tied output head. The GGUF has no `output.weight`; the script asserts that the loaded model's
   `lm_head.weight` equals `embed_tokens.weight` (transformers 5.23 sets tie_word_embeddings=True
   and ties them itself; the script would tie them explicitly and say so otherwise). No discrepancy.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TOKEN_IDS_OUT = os.path.join(ROOT, "Tests", "TokenizerTests", "Fixtures", "token-ids.json")
LOGPROBS_OUT = os.path.join(ROOT, "Tests", "GGUFTests", "Fixtures", "reference-logprobs.json")

# SmolLM2's default system message, prepended by its chat template when no system message is given.
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# Strings for the token-id fixture. Each covers something a byte-level BPE can get wrong.
TOKEN_ID_STRINGS = [
    # ASCII prose
    "Hello, world! This is a simple sentence.",
    "The quick brown fox jumps over the lazy dog.",
    "In the beginning the Universe was created. This has made a lot of people very angry "
    "and been widely regarded as a bad move.",
    "A",
    "",
    # digits and numbers
    "1234567890",
    "Pi is 3.14159265358979 and e is 2.71828.",
    "In 2024, the population was 8,045,311,447 people.",
    "Call 555-0123 or +1 (800) 555-0199 ext. 42",
    "99999999999999999999999999999999",
    "\n\n1. first\n2. second\n   3. third",
    "x  42 y\t7 z\n\n\n8",
    "Math: ∑ xᵢ² ≤ ∞, α+β=γ, ½ ¾ ² ³ ①② Ⅻ",
    "Arabic-Indic ٣٤٥ and Devanagari ४२ digits",
    # contractions
    "I'm sure it's fine, we'll see; they've said you'd go, they're right, don't worry.",
    "IT'S LOUD AND I'M SHOUTING, DON'T",
    "'s 're 've 'm 'll 'd 't 'x ''s !!!'s",
    # whitespace runs
    "word    four spaces before and after    ",
    "  leading spaces and trailing  ",
    " ",
    "\t",
    "\n",
    "tabs\there\t\tand\t\t\tthere",
    "line one\nline two\n\nline four\n\n\n\nend\n",
    "mixed \t \n whitespace \r\n windows line\r\nend",
    "nbsp\u00a0here, em\u2003space, ideographic\u3000space, zero\u200bwidth",
    # accented letters and other scripts
    "Café naïve résumé façade jalapeño Ångström",
    "Ça va? Übermäßig große Straße. Ñandú.",
    "decomposed e\u0301 versus composed é; Z\u0324\u0354\u0367a\u0308\u0356o\u0319",
    "Привет, мир! Γειά σου Κόσμε! שלום עולם",
    # CJK
    "日本語のテキストを分割します。",
    "中文文本：你好，世界！",
    "한국어 문장입니다.",
    # emoji
    "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "🤗🤗🤗 hugging",
    # code and symbols
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { printf(\"%d\\n\", i); }",
    "{\"key\": [1, 2.5, null], \"nested\": {\"a\": true}}",
    "https://example.com/path?query=value&x=42#frag",
    "!!!??? ... --- *** ### @@@ $$$ %%% \"quoted\" 'single' (paren) [bracket]",
    "control chars \u0001\u0007\u007f and replacement \ufffd",
    # bytes that no token stands for (see the docstring, point 5)
    "a\u0004b !\u0004! =\u0006= ab\u0013\u0014\u0016\u001dcd \u0004",
    "x \U00040000y \U000f0000 z",
    # ChatML turns and control tokens
    "<|im_start|>system\n" + DEFAULT_SYSTEM + "<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    "<|im_start|>assistant\n",
    "4<|im_end|>",
    "<|im_start|><|im_end|>",
    "<|endoftext|>Text after the end<|endoftext|><|endoftext|>",
    "Almost special: <|im_start |> <|im_end <im_end|> <|endoftext",
    "<repo_name>alignscope<file_sep>main.swift<jupyter_code>print(1)<empty_output>",
    # HH transcript
    "\n\nHuman: Can you help me?\n\nAssistant: Sure, what do you need?",
]


def render_chatml(messages):
    """CONTRACT.md ChatML prompt: default system message when the first message is not a system one."""
    out = ""
    if not messages or messages[0]["role"] != "system":
        out += "<|im_start|>system\n" + DEFAULT_SYSTEM + "<|im_end|>\n"
    for m in messages:
        out += "<|im_start|>" + m["role"] + "\n" + m["content"] + "<|im_end|>\n"
    return out + "<|im_start|>assistant\n"


def render_hh(messages):
    """CONTRACT.md HH prompt: "\\n\\nHuman: {user}" / "\\n\\nAssistant: {text}" per turn, then "\\n\\nAssistant:"."""
    out = ""
    for m in messages:
        speaker = "Assistant" if m["role"] == "assistant" else "Human"
        out += "\n\n" + speaker + ": " + m["content"]
    return out + "\n\nAssistant:"


def U(text):
    return {"role": "user", "content": text}


def A(text):
    return {"role": "assistant", "content": text}


def S(text):
    return {"role": "system", "content": text}


# (kind, prompt text or messages, response text before the template's response wrapping)
LOGPROB_PAIRS = [
    ("plain", "The capital of France is", " Paris."),
    ("plain", "Once upon a time, there was a little", " girl who lived in a village near the forest."),
    ("plain", "2 + 2 =", " 4"),
    ("plain", "def add(a, b):\n    return", " a + b\n"),
    ("chatml", [U("What is the capital of France?")], "The capital of France is Paris."),
    ("chatml", [U("What is the capital of France?")], "I like turtles."),
    ("chatml", [S("You are a pirate."), U("Say hello.")], "Ahoy, matey! How be ye?"),
    ("chatml", [U("What is 12 * 12?")], "12 * 12 = 144."),
    ("chatml", [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")],
     "Why did the chicken cross the road? To get to the other side!"),
    ("chatml", [U("Réponds en français : merci !")], "De rien ! 😊"),
    ("chatml", [U("Write a haiku about autumn.")],
     "Crisp leaves drift and fall,\ngolden light on quiet paths,\nthe year breathes slower."),
    ("hh", [U("How do I bake bread?")],
     "Mix flour, water, yeast and salt, knead the dough, let it rise, then bake it at 220°C for 30 minutes."),
    ("hh", [U("What's the weather like on Mars?")], "Cold and dusty: around -60 °C on average."),
    ("hh", [U("Can you recommend a book?"), A("Sure! What genres do you like?"), U("Science fiction.")],
     "Try \"The Left Hand of Darkness\" by Ursula K. Le Guin."),
    ("hh", [U("Tell me something rude.")], "I'd rather not; how about a fun fact instead?"),
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_tokenizer(model_dir, gguf_name):
    from transformers import AutoTokenizer
    from tokenizers import pre_tokenizers

    stock = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf_name)
    fixed = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf_name)
    print("stock GGUF pre-tokenizer:", json.loads(stock.backend_tokenizer.to_str())["pre_tokenizer"])
    fixed.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return stock, fixed


def check_tokenizer(tok):
    # Digits: one token per digit, whatever surrounds them.
    for text in ["1234567890", " 2024", "\n\n42", "x  99"]:
        ids = tok.encode(text, add_special_tokens=False)
        pieces = tok.convert_ids_to_tokens(ids)
        print("digits:", repr(text), ids, pieces)
        digit_pieces = [p for p in pieces if any(c.isdigit() for c in p)]
        assert all(len(p) == 1 for p in digit_pieces), (text, pieces)


def check_control_tokens(tok, gguf_path):
    # gguf-py lists the token types independently of transformers' GGUF converter.
    from gguf import GGUFReader
    reader = GGUFReader(gguf_path)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    control = [(i, t) for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 3]
    print(f"{len(control)} control tokens:", [t for _, t in control])
    for i, t in control:
        got = tok.encode(t, add_special_tokens=False)
        assert got == [i], (t, got)
    for text in ["<|im_start|>user\nHi<|im_end|>\n", "a<|endoftext|>b"]:
        ids = tok.encode(text, add_special_tokens=False)
        print("control:", repr(text), ids, tok.convert_ids_to_tokens(ids))
    assert tok.encode("<|im_start|>user", add_special_tokens=False) == [1, 4093]
    assert tok.encode("<|im_end|>", add_special_tokens=False) == [2]


def byte_to_unicode():
    """GPT-2's byte -> printable character table."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def report_missing_bytes(gguf_path):
    from gguf import GGUFReader
    tokens = set(GGUFReader(gguf_path).fields["tokenizer.ggml.tokens"].contents())
    table = byte_to_unicode()
    missing = [b for b in range(256) if table[b] not in tokens]
    print(f"{len(missing)} bytes have no token:", " ".join(f"0x{b:02X}" for b in missing))
    return missing


def report_digit_split_differences(stock, fixed, texts):
    n = 0
    for text in texts:
        a = stock.encode(text, add_special_tokens=False)
        b = fixed.encode(text, add_special_tokens=False)
        if a != b:
            n += 1
            print("digit split changes ids for", repr(text))
            print("   stock GGUF:", stock.convert_ids_to_tokens(a))
            print("   smollm    :", fixed.convert_ids_to_tokens(b))
    print(f"{n} of {len(texts)} strings tokenise differently without the digit split")


def write_json(path, obj):
    """Indented JSON with every list of numbers on one line (readable diffs, small files)."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    text = re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    assert json.loads(text) == obj
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print("wrote", os.path.relpath(path, ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--skip-logprobs", action="store_true", help="write only the token-id fixture")
    args = ap.parse_args()

    gguf_path = os.path.realpath(args.model)
    gguf_name = os.path.basename(gguf_path)
    # transformers wants a directory and a file name inside it; a scratch dir with a symlink keeps the
    # model directory clean.
    with tempfile.TemporaryDirectory(prefix="alignscope-ref-") as scratch:
        os.symlink(gguf_path, os.path.join(scratch, gguf_name))
        make_fixtures(scratch, gguf_path, gguf_name, args.skip_logprobs)


def make_fixtures(scratch, gguf_path, gguf_name, skip_logprobs):
    import torch
    import transformers
    import tokenizers

    stock, tok = load_tokenizer(scratch, gguf_name)
    check_tokenizer(tok)
    check_control_tokens(tok, gguf_path)
    report_digit_split_differences(stock, tok, TOKEN_ID_STRINGS)
    report_missing_bytes(gguf_path)

    provenance = {
        "generator": "scripts/make-reference.py",
        "model": gguf_name,
        "model_sha256": sha256(gguf_path),
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "torch": torch.__version__,
        "pre_tokenizer": "Digits(individual_digits=True) then ByteLevel(add_prefix_space=False, use_regex=True)",
    }
    cases = []
    for text in TOKEN_ID_STRINGS:
        ids = tok.encode(text, add_special_tokens=False)
        if not any(c in text for c in "\x04\x06\x13\x14\x16\x1d\U00040000"):
            assert tok.decode(ids) == text, ("decode does not round-trip", text)
        # The stock GGUF tokenizer (plain GPT-2 pattern) gives the reference for the `gpt2` pre-tokenizer.
        cases.append({"text": text, "ids": ids, "ids_gpt2": stock.encode(text, add_special_tokens=False)})
    assert len(cases) >= 30
    write_json(TOKEN_IDS_OUT, dict(provenance, cases=cases))

    if skip_logprobs:
        return

    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=gguf_name, dtype=torch.float32)
    model.eval()
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    if not torch.equal(emb, head):
        print("lm_head was not tied to embed_tokens; tying it (the GGUF has no output.weight)")
        model.tie_weights()
        model.lm_head.weight = model.model.embed_tokens.weight
    assert torch.equal(model.get_input_embeddings().weight, model.get_output_embeddings().weight)
    print("config:", {k: getattr(model.config, k) for k in [
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "intermediate_size", "rope_theta", "rope_parameters", "rms_norm_eps", "tie_word_embeddings"] if hasattr(model.config, k)})

    pairs = []
    for kind, prompt_src, text in LOGPROB_PAIRS:
        if kind == "plain":
            messages, prompt, response = None, prompt_src, text
        elif kind == "chatml":
            messages = prompt_src
            prompt = render_chatml(messages)
            reference = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            assert prompt == reference, (prompt, reference)
            response = text + "<|im_end|>"
        else:
            messages = prompt_src
            prompt = render_hh(messages)
            response = " " + text
        prompt_ids = tok.encode(prompt, add_special_tokens=False)
        response_ids = tok.encode(response, add_special_tokens=False)
        ids = torch.tensor([prompt_ids + response_ids])
        with torch.no_grad():
            logits = model(ids).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        n_p = len(prompt_ids)
        # logits at position t predict token t+1.
        per_token = [logp[n_p - 1 + k, tid].item() for k, tid in enumerate(response_ids)]
        total = float(sum(per_token))
        entry = {"kind": kind}
        if messages is not None:
            entry["messages"] = messages
            entry["response_text"] = text
        entry.update({
            "prompt": prompt, "response": response,
            "prompt_ids": prompt_ids, "response_ids": response_ids,
            "logprobs": per_token, "logprob": total,
            "n_tokens": len(response_ids), "mean_logprob": total / len(response_ids),
        })
        print(f"{kind:6s} n={len(response_ids):3d} logprob={total:10.4f} {response[:50]!r}")
        pairs.append(entry)
    assert len(pairs) >= 12
    write_json(LOGPROBS_OUT, dict(provenance, dtype="float32", bos=False,
                                  convention="prompt and response tokenised separately, ids concatenated; "
                                             "logprobs[k] = log p(response_ids[k] | prompt_ids + response_ids[..k])",
                                  pairs=pairs))


if __name__ == "__main__":
    sys.exit(main())
