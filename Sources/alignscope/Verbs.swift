/// The verbs of the command line, their options and help text. The contract (DESIGN.md): names
/// may gain options, never lose them.
enum Verbs {
    static let run = Verb(
        name: "run", synopsis: "SPEC [--db PATH] [--jobs N] [--only RUN]",
        summary: "Plan the runs of an experiment spec, then train and evaluate every run that is not finished.",
        details: """
        Runs are recorded in the SQLite store (created if missing). A finished run is skipped; an
        interrupted or failed one resumes from its last checkpoint, after deleting rows recorded past it.
        A run held by another live process is left alone. Checkpoints go to results/<experiment>/<run>/
        (beside the database). Exit code 0 when every run finished, 1 when a run failed, 2 on bad input.
        """,
        positionals: ["SPEC"],
        options: [
            OptionSpec(name: "--db", value: "PATH", help: "run store (default results/runs.sqlite)"),
            OptionSpec(name: "--jobs", value: "N", help: "runs at once, each in its own process (default 1)"),
            OptionSpec(name: "--only", value: "RUN", help: "run only the run with this name (see `plan`)"),
            OptionSpec(name: "--checkpoints", value: "DIR", help: "checkpoint folder (default: results/ beside the database)"),
            OptionSpec(name: "--quiet", value: nil, help: "no progress output"),
        ])

    static let plan = Verb(
        name: "plan", synopsis: "SPEC [--json]",
        summary: "Validate a spec and show the runs it expands into, without running anything.",
        details: "", positionals: ["SPEC"],
        options: [OptionSpec(name: "--json", value: nil, help: "one JSON object per run: name, sha256, config")])

    static let status = Verb(
        name: "status", synopsis: "[--db PATH] [--json]",
        summary: "List the runs in a store with their status, step, last loss, start and finish times.",
        details: "", positionals: [],
        options: [
            OptionSpec(name: "--db", value: "PATH", help: "run store (default results/runs.sqlite)"),
            OptionSpec(name: "--experiment", value: "NAME", help: "only this experiment"),
            OptionSpec(name: "--json", value: nil, help: "one JSON object per run"),
        ])

    static let report = Verb(
        name: "report", synopsis: "[--db PATH] [--experiment NAME] [--out DIR]",
        summary: "Render CSV files, SVG figures and an index (HTML and Markdown) from the run store.",
        details: "", positionals: [],
        options: [
            OptionSpec(name: "--db", value: "PATH", help: "run store (default results/runs.sqlite)"),
            OptionSpec(name: "--experiment", value: "NAME", help: "experiment to report (default: the only or latest one)"),
            OptionSpec(name: "--out", value: "DIR", help: "output folder (default results/report)"),
        ])

    static let score = Verb(
        name: "score", synopsis: "--model GGUF (--prompt TEXT --response TEXT | --input FILE.jsonl) [--json] [--tokens]",
        summary: "Log-probability of responses given prompts: sum over response tokens, count and mean.",
        details: """
        Prompt and response are tokenized separately (no BOS) and concatenated; the score is the sum of
        log p(response token | everything before it). Texts are used as given: apply a chat template
        yourself, or pass --template chatml|hh to wrap a plain user prompt and response.
        With --input, every line is scored in one batched pass over a shared KV cache (a prompt that
        several lines repeat is run once) and the output has one JSON line per input line, in order.
        """,
        positionals: [],
        options: [
            OptionSpec(name: "--model", value: "GGUF", help: "model file"),
            OptionSpec(name: "--prompt", value: "TEXT", help: "prompt text"),
            OptionSpec(name: "--response", value: "TEXT", help: "response text"),
            OptionSpec(name: "--input", value: "FILE", help: "JSONL with {\"prompt\", \"response\"} per line"),
            OptionSpec(name: "--template", value: "NAME", help: "wrap prompt/response in a chat template: chatml or hh"),
            OptionSpec(name: "--json", value: nil, help: "JSON output (always JSON lines with --input)"),
            OptionSpec(name: "--tokens", value: nil, help: "also output token ids and per-token log-probabilities"),
        ])

    static let generate = Verb(
        name: "generate", synopsis: "--model GGUF --prompt TEXT [--max-tokens N] [--temperature X] [--top-p P] [--seed S]",
        summary: "Generate a continuation with a KV cache, streaming text as it is produced; stops at EOS.",
        details: "Temperature 0 (the default) is greedy decoding.",
        positionals: [],
        options: [
            OptionSpec(name: "--model", value: "GGUF", help: "model file"),
            OptionSpec(name: "--prompt", value: "TEXT", help: "prompt text"),
            OptionSpec(name: "--template", value: "NAME", help: "wrap the prompt as a user turn: chatml or hh"),
            OptionSpec(name: "--max-tokens", value: "N", help: "at most N new tokens (default 128)"),
            OptionSpec(name: "--temperature", value: "X", help: "sampling temperature, 0 = greedy (default 0)"),
            OptionSpec(name: "--top-p", value: "P", help: "nucleus sampling mass (default 1)"),
            OptionSpec(name: "--seed", value: "S", help: "sampling seed (default 0)"),
        ])

    static let probes = Verb(
        name: "probes", synopsis: "build SPEC_OR_FILE --out FILE | audit FILE",
        summary: "Materialise a probe set's derived and generated categories, or audit a probe file.",
        details: """
        build: reads a spec (its data.probes section) or a probe JSONL file and writes one JSON line per
        probe with every category's text and origin.
        audit: per-category token-length statistics and word overlap with the chosen and rejected
        responses; flags empty responses, duplicates, a random response equal to its own chosen one and
        a paraphrase that copies its source. Exit code 1 when anything is flagged.
        """,
        positionals: ["build|audit", "FILE"],
        options: [
            OptionSpec(name: "--out", value: "FILE", help: "output JSONL (build)"),
            OptionSpec(name: "--model", value: "GGUF", help: "tokenizer for token statistics and random tokens (default: the spec's model, else the default model)"),
            OptionSpec(name: "--seed", value: "S", help: "seed for derived categories when reading a plain file (default 1)"),
        ])

    static let export = Verb(
        name: "export", synopsis: "--db PATH --run ID [--step S] --out FILE.gguf",
        summary: "Write a run's fine-tuned weights as a GGUF file for llama.cpp.",
        details: "", positionals: [],
        options: [
            OptionSpec(name: "--db", value: "PATH", help: "run store"),
            OptionSpec(name: "--run", value: "ID", help: "run id or name"),
            OptionSpec(name: "--step", value: "S", help: "checkpoint step (default: the latest)"),
            OptionSpec(name: "--out", value: "FILE", help: "output GGUF"),
            OptionSpec(name: "--f16", value: nil, help: "store tensors as F16 instead of F32"),
            OptionSpec(name: "--checkpoints", value: "DIR", help: "checkpoint folder used by run (default: beside the database)"),
        ])

    static let bench = Verb(
        name: "bench", synopsis: "[--model GGUF] [--json]",
        summary: "Measure sgemm FLOP/s, a training step, scoring and generation throughput (use a release build).",
        details: "", positionals: [],
        options: [
            OptionSpec(name: "--model", value: "GGUF", help: "model file (default models/SmolLM2-135M-Instruct.Q4_1.gguf)"),
            OptionSpec(name: "--json", value: nil, help: "JSON output"),
            OptionSpec(name: "--repeats", value: "N", help: "measurements per figure; the median is reported (default 3)"),
        ])

    static let all = [run, plan, status, report, score, generate, probes, export, bench]

    static let overview: String = {
        var out = """
        alignscope: watch what a language model learns while it is fine-tuned.

        usage: alignscope <verb> [options]    (alignscope <verb> --help for details)

        verbs:

        """
        for v in all {
            out += "  " + v.name.padding(toLength: 10, withPad: " ", startingAt: 0) + v.summary + "\n"
        }
        return out
    }()
}
