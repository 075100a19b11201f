import Foundation
import Base
import Experiments
import Tokenizer

// The verbs of the command line: one struct each, its stored properties its typed options, declared once in
// its `options` table (flag, placeholder, help, property). The contract (DESIGN.md): names may gain options,
// never lose them.

enum Verbs {
    static var all: [any Verb.Type] { [RunVerb.self, PlanVerb.self, StatusVerb.self, MergeVerb.self, SlurmVerb.self, ReportVerb.self, ScoreVerb.self,
                                       GenerateVerb.self, LabelVerb.self, ProbesVerb.self, ExportVerb.self, BenchVerb.self] }

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

struct RunVerb: Verb {
    static let name = "run"
    static let synopsis = "SPEC [--db PATH] [--jobs N] [--only RUN]"
    static let summary = "Plan the runs of an experiment spec, then train and evaluate every run that is not finished."
    static let details = """
        Runs are recorded in the SQLite store (created if missing). A finished run is skipped; an
        interrupted or failed one resumes from its last checkpoint, after deleting rows recorded past it.
        A run held by another live process is left alone. Checkpoints go to results/<experiment>/<run>/
        (beside the database). A spec whose model is { checkpoints: DIR } trains nothing: its run evaluates
        every complete checkpoint of DIR (a transformers Trainer's output folder), records each at its global
        step with the trainer's log_history, and when run again evaluates only checkpoints not yet recorded.
        Exit code 0 when every run finished, 1 when a run failed or was interrupted, 2 on bad input.
        """

    var spec = ""
    var db = Commands.defaultStore
    var jobs = 1
    var only: String?
    var checkpoints: String?
    var quiet = false
    var newVersion = false
    var follow: Int?

    static var options: [VerbOption<RunVerb>] {
        [
            .positional("SPEC", \.spec, help: "experiment spec (JSON5)"),
            .store(\.db),
            .option("--jobs", "N", \.jobs, help: "runs at once, each in its own process (default 1)"),
            .option("--only", "RUN", \.only, help: "run only the run with this name (see `plan`)"),
            .option("--checkpoints", "DIR", \.checkpoints, help: "checkpoint folder (default: results/ beside the database)"),
            .option("--follow", "SECONDS", \.follow, help: "a spec whose model is { checkpoints: DIR }: after evaluating what DIR holds, keep watching it and evaluate each new checkpoint once complete, until none has appeared for SECONDS (Ctrl-C stops cleanly; running again goes on without evaluating a checkpoint twice)"),
            .flag("--quiet", \.quiet, help: "no progress output"),
            .flag("--new-version", \.newVersion, help: "the store has this experiment name with another spec: record this spec as a new experiment NAME.v2 (v3, ...) beside it, keeping both specs (without it such a spec is refused)"),
        ]
    }

    func validate() throws {
        try Commands.checkStorePath(db)
        guard (1...256).contains(jobs) else { throw UsageError(message: "--jobs: expected an integer in [1, 256], found \(jobs)") }
        if let follow, follow < 0 { throw UsageError(message: "--follow: expected seconds >= 0, found \(follow)") }
    }
}

struct PlanVerb: Verb {
    static let name = "plan"
    static let synopsis = "SPEC [--json]"
    static let summary = "Validate a spec and show the runs it expands into, without running anything."
    static let details = """
        Checks what `run` checks before it writes anything: the spec, the model file and its tokenizer, the
        training and probe files (every line the objective and the categories read), lengths against
        train.max_length and the model's context, and the batch against this machine's memory. Exit code 0
        when the spec would run, 2 on bad input (one line naming the file, key or line).
        """

    var spec = ""
    var json = false
    var noCheck = false

    static var options: [VerbOption<PlanVerb>] {
        [
            .positional("SPEC", \.spec, help: "experiment spec (JSON5)"),
            .flag("--json", \.json, help: "one JSON object per run: name, sha256, config (the identity, as runs.config stores it) and resolved (every key with its value, defaults filled in)"),
            .flag("--no-check", \.noCheck, help: "expand the spec only, without reading the model and data files"),
        ]
    }
}

struct StatusVerb: Verb {
    static let name = "status"
    static let synopsis = "[--db PATH] [--json]"
    static let summary = "List the runs in a store with their status, step, last loss, start and finish times."

    var db = Commands.defaultStore
    var experiment: String?
    var json = false

    static var options: [VerbOption<StatusVerb>] {
        [
            .store(\.db),
            .option("--experiment", "NAME", \.experiment, help: "only this experiment"),
            .flag("--json", \.json, help: "one JSON object per run"),
        ]
    }

    func validate() throws { try Commands.checkStorePath(db) }
}

struct MergeVerb: Verb {
    static let name = "merge"
    static let synopsis = "--db MAIN SHARD..."
    static let summary = "Bring run stores written elsewhere (one per machine or cluster task) into one store."
    static let details = """
        Each SHARD is a run store written by `alignscope run SPEC --only RUN --db SHARD` on another machine
        or a cluster task. Its experiments, runs (by config sha256), probes and responses (by content) and
        every result row (log-probabilities, measures, tokens, metrics, samples) are added to MAIN under
        MAIN's ids, one transaction per shard. Merging a shard twice adds nothing. A row MAIN already holds
        must be equal (timing metrics aside): otherwise that shard is refused with a line naming the run,
        and nothing of it is merged. A shard of an older schema version is migrated first (in place).
        Exit code 0 when every shard merged, 2 on a refused shard or bad input.
        """

    var db = Commands.defaultStore
    var shards: [String] = []

    static var options: [VerbOption<MergeVerb>] {
        [
            .rest("SHARD", \.shards, help: "run stores to merge into --db, in order"),
            .store(\.db),
        ]
    }

    func validate() throws { try Commands.checkStorePath(db) }
}

struct SlurmVerb: Verb {
    static let name = "slurm"
    static let synopsis = "SPEC [--db PATH] [--partition P] [--time HH:MM:SS] [--cpus N] [--mem SIZE] [--max-parallel K] [--sbatch-arg ARG]... [--dry-run]"
    static let summary = "Run an experiment on a Slurm cluster: one job array per wave of runs, one store per task, then merge."
    static let details = """
        Plans the experiment and records it in the main store (--db), then writes one sbatch script per wave
        to results/<experiment>/slurm/ (a wave: the unfinished runs whose inputs are in earlier waves; its array
        starts when those arrays succeeded, --dependency=afterok) and submits each with sbatch, printing the
        job ids. Each task runs one run with its store and checkpoints on node-local disk ($SLURM_TMPDIR, else
        $TMPDIR, else results/<experiment>/slurm/local), and copies its store (a shard, under
        results/<experiment>/shards/) and its checkpoint folder back when the run ends or is stopped. SIGTERM
        (preemption) stops the run after its step with a checkpoint; a requeued task resumes from the copied
        checkpoint. When the arrays are done: alignscope merge --db PATH results/<experiment>/shards/*.sqlite.
        The results folder (beside --db) must be on a filesystem every node sees; SQLite files are only ever
        opened on node-local disk. --dry-run prints the scripts and submits nothing.
        """

    var spec = ""
    var db = Commands.defaultStore
    var partition: String?
    var time: String?
    var cpus: Int?
    var mem: String?
    var maxParallel: Int?
    var sbatchArgs: [String] = []
    var dryRun = false

    static var options: [VerbOption<SlurmVerb>] {
        [
            .positional("SPEC", \.spec, help: "experiment spec (JSON5)"),
            .store(\.db),
            .option("--partition", "P", \.partition, help: "Slurm partition"),
            .option("--time", "HH:MM:SS", \.time, help: "time limit of each task"),
            .option("--cpus", "N", \.cpus, help: "CPUs per task"),
            .option("--mem", "SIZE", \.mem, help: "memory per task (e.g. 8G)"),
            .option("--max-parallel", "K", \.maxParallel, help: "at most K tasks of an array at once"),
            .repeated("--sbatch-arg", "ARG", \.sbatchArgs, help: "another #SBATCH line, e.g. --sbatch-arg=--qos=short"),
            .flag("--dry-run", \.dryRun, help: "print the scripts, submit nothing"),
        ]
    }

    func validate() throws {
        try Commands.checkStorePath(db)
        if let cpus, cpus < 1 { throw UsageError(message: "--cpus: expected a positive integer, found \(cpus)") }
        if let maxParallel, maxParallel < 1 { throw UsageError(message: "--max-parallel: expected a positive integer, found \(maxParallel)") }
        if let time, time.range(of: #"^(\d+-)?\d{1,2}(:\d{2}){0,2}$"#, options: .regularExpression) == nil {
            throw UsageError(message: "--time: expected Slurm's time format (MM, HH:MM:SS or D-HH:MM:SS), found \"\(time)\"")
        }
        // each becomes one #SBATCH line: a line break (or any control character) would start a line of shell code
        for (flag, value) in [("--partition", partition), ("--mem", mem)] + sbatchArgs.map({ ("--sbatch-arg", $0) }) {
            guard let value else { continue }
            if value.isEmpty || value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format }) {
                throw UsageError(message: "\(flag): expected one line of text without control characters, found \(JSONValue.string(value).canonical)")
            }
        }
    }
}

struct ReportVerb: Verb {
    static let name = "report"
    static let synopsis = "[--db PATH] [--experiment NAME] [--out DIR]"
    static let summary = "Render CSV files, SVG figures and an index (HTML and Markdown) from the run store."

    var db = Commands.defaultStore
    var experiment: String?
    var out = "results/report"

    static var options: [VerbOption<ReportVerb>] {
        [
            .store(\.db),
            .option("--experiment", "NAME", \.experiment, help: "experiment to report (default: the only or latest one)"),
            .option("--out", "DIR", \.out, help: "output folder (default results/report)"),
        ]
    }

    func validate() throws { try Commands.checkStorePath(db) }
}

struct ScoreVerb: Verb {
    static let name = "score"
    static let synopsis = "--model GGUF (--prompt TEXT --response TEXT | --input FILE.jsonl) [--json] [--tokens]"
    static let summary = "Log-probability of responses given prompts: sum over response tokens, count and mean."
    static let details = """
        Prompt and response are tokenized separately (no BOS) and concatenated; the score is the sum of
        log p(response token | everything before it). Texts are used as given: apply a chat template
        yourself, or pass --template chatml|hh|raw to wrap a plain user prompt and response (raw: as given).
        With --input, every line is scored in one batched pass over a shared KV cache (a prompt that
        several lines repeat is run once) and the output has one JSON line per input line, in order.
        """

    var model: String?
    var prompt: String?
    var response: String?
    var input: String?
    var template: ChatTemplate?
    var json = false
    var tokens = false

    static var options: [VerbOption<ScoreVerb>] {
        [
            .option("--model", "GGUF", \.model, help: "model file, or a Hugging Face model directory"),
            .option("--prompt", "TEXT", \.prompt, help: "prompt text"),
            .option("--response", "TEXT", \.response, help: "response text"),
            .option("--input", "FILE", \.input, help: "JSONL with {\"prompt\", \"response\"} per line"),
            .choice("--template", "NAME", \.template, help: "wrap prompt/response in a chat template: chatml, hh or raw (as given, the default)"),
            .flag("--json", \.json, help: "JSON output (always JSON lines with --input)"),
            .flag("--tokens", \.tokens, help: "also output token ids and per-token log-probabilities"),
        ]
    }

    func validate() throws {
        if input != nil, prompt != nil || response != nil {
            throw UsageError(message: "score: give either --input or --prompt/--response, not both")
        }
        if input == nil, prompt == nil || response == nil {
            throw UsageError(message: "score: give --prompt and --response, or --input FILE.jsonl")
        }
    }
}

struct GenerateVerb: Verb {
    static let name = "generate"
    static let synopsis = "--model GGUF --prompt TEXT [--max-tokens N] [--temperature X] [--top-p P] [--seed S]"
    static let summary = "Generate a continuation with a KV cache, streaming text as it is produced; stops at EOS."
    static let details = "Temperature 0 (the default) is greedy decoding."

    var model: String?
    var prompt: String?
    var template: ChatTemplate?
    var sampling = SamplingFlags(maxTokens: 128, temperature: 0, greedyAllowed: true)

    static var options: [VerbOption<GenerateVerb>] {
        [
            .option("--model", "GGUF", \.model, help: "model file, or a Hugging Face model directory"),
            .option("--prompt", "TEXT", \.prompt, help: "prompt text"),
            .choice("--template", "NAME", \.template, help: "wrap the prompt as a user turn: chatml, hh or raw (as given, the default)"),
        ] + VerbOption.sampling(\.sampling)
    }

    func validate() throws {
        guard prompt != nil else { throw UsageError(message: "--prompt: missing") }
        try sampling.validate()
    }
}

struct LabelVerb: Verb {
    static let name = "label"
    static let synopsis = "--data FILE --policy MODEL (--reward-model GGUF | --judge MODEL) --out FILE.jsonl [--samples N] [--temperature X] [--top-p P] [--max-tokens N] [--seed S] [--template T] [--limit N] [--judge-template FILE] [--agreement FILE]"
    static let summary = "Synthetic preference pairs: sample responses from a policy, score them with a reward model or a judge."
    static let details = """
        For every prompt of --data (any data format AlignScope reads), --samples responses are sampled from
        --policy (a GGUF file or Hugging Face directory; a run's weights: alignscope export it first), all
        samples of 8 prompts in lock step, each seeded by its prompt's line and index. Each sample is scored by
        --reward-model (a reward model exported by alignscope export --format gguf) or by --judge (a model
        asked which of two responses is better, both orders, from the log-probabilities of its answer tokens
        A and B; --judge-template FILE replaces the question, which must hold {prompt}, {a} and {b}). The best
        sample becomes "chosen", the worst "rejected"; every sample and its score, and the provenance in
        "origins", are written as one JSON line per prompt, appended and flushed as it goes. Prompts whose
        samples all score the same are reported and skipped. Running again with the same --out and the same
        inputs resumes: the prompts already written (or skipped) are not sampled again. OUT.inputs.json records
        the inputs (data sha256, policy, scorer, settings); other inputs, or a file label did not write, are
        refused untouched. With --judge and --agreement FILE, the
        judge's agreement with that file's chosen/rejected labels is printed. A summary goes to OUT.meta.json.
        """

    var data: String?
    var policy: String?
    var rewardModel: String?
    var judge: String?
    var judgeTemplate: String?
    var agreement: String?
    var out: String?
    var samples = 4
    var sampling = SamplingFlags(maxTokens: 128, temperature: 1, greedyAllowed: false)
    var template = ChatTemplate.chatml
    var limit = 0

    static var options: [VerbOption<LabelVerb>] {
        [
            .option("--data", "FILE", \.data, help: "prompts to label (JSONL, any data format)"),
            .option("--policy", "MODEL", \.policy, help: "the model that samples (GGUF file or Hugging Face directory)"),
            .option("--reward-model", "GGUF", \.rewardModel, help: "score samples with this reward model"),
            .option("--judge", "MODEL", \.judge, help: "score samples with this model as a judge (GGUF or directory)"),
            .option("--judge-template", "FILE", \.judgeTemplate, help: "the judge's question, with {prompt}, {a} and {b}"),
            .option("--agreement", "FILE", \.agreement, help: "with --judge: report its agreement with this file's chosen/rejected"),
            .option("--out", "FILE", \.out, help: "output JSONL (appended to; resumes)"),
            .option("--samples", "N", \.samples, help: "samples per prompt (default 4)"),
            .choice("--template", "NAME", \.template, help: "chat template of policy, scorer and judge: chatml (default), hh or raw"),
            .option("--limit", "N", \.limit, help: "only the first N prompts (default all)"),
        ] + VerbOption.sampling(\.sampling)
    }

    func validate() throws {
        for (flag, value) in [("--data", data), ("--policy", policy), ("--out", out)] where value == nil {
            throw UsageError(message: "label: \(flag): missing")
        }
        guard (rewardModel == nil) != (judge == nil) else {
            throw UsageError(message: "label: give a scorer: --reward-model GGUF or --judge MODEL (one of them)")
        }
        if judge == nil, judgeTemplate != nil || agreement != nil {
            throw UsageError(message: "label: --judge-template and --agreement go with --judge")
        }
        guard (2...64).contains(samples) else { throw UsageError(message: "--samples: expected an integer in [2, 64] (a pair needs two samples; the spec's label.samples has the same bounds), found \(samples)") }
        try sampling.validate()
        guard limit >= 0 else { throw UsageError(message: "--limit: expected an integer >= 0, found \(limit)") }
    }
}

struct ProbesVerb: Verb {
    static let name = "probes"
    static let synopsis = "build SPEC_OR_FILE --out FILE | audit FILE | show FILE [--line N] [--template T] [--system TEXT] [--model GGUF|DIR] [--json]"
    static let summary = "Materialise a probe set's derived and generated categories, audit a probe file, or show what is scored."
    static let details = """
        build: reads a spec (its data.probes section) or a probe JSONL file and writes one JSON line per
        probe with every category's text and origin.
        audit: the forms the lines were read as, per-category token-length statistics and word overlap
        with the chosen and rejected responses; flags empty responses, duplicates, a random response
        equal to its own chosen one and a paraphrase that copies its source. Exit code 1 when anything
        is flagged.
        show: for each line (or --line N), the form it was read as and exactly what is scored under the
        template (under chatml with its system message: SmolLM2's default, or --system's as a spec's `system`
        sets it): the prompt and every response, JSON-quoted so every space and newline is visible; with
        --model, the token ids and pieces on both sides of the prompt/response boundary. Check a file's
        format here before a long run.
        """

    enum Action: String, CaseIterable { case build, audit, show }

    var action = Action.show
    var file = ""
    var out: String?
    var model: String?
    var seed = 1
    var line: Int?
    var template = ChatTemplate.chatml
    var system: String?
    var json = false

    static var options: [VerbOption<ProbesVerb>] {
        [
            VerbOption(name: "build|audit|show", kind: .positional, help: "build: write every category's texts; audit: forms, statistics and flags; show: what is scored",
                       set: { $0.action = try VerbOption<ProbesVerb>.parseChoice("probes", $1, as: Action.self) }, get: { $0.action.rawValue }),
            .positional("FILE", \.file, help: "a spec (build) or a probe JSONL file"),
            .option("--line", "N", \.line, help: "show: only this line of the file (1-based)"),
            .choice("--template", "T", \.template, help: "show: chatml, hh or raw (default chatml)"),
            .option("--system", "TEXT", \.system, help: "show: chatml's system message, as the spec key `system` sets it (default SmolLM2's; \"\" for none)"),
            .flag("--json", \.json, help: "show: one JSON object per line"),
            .option("--out", "FILE", \.out, help: "output JSONL (build)"),
            .option("--model", "GGUF|DIR", \.model, help: "tokenizer (a GGUF file or Hugging Face directory) for token statistics and random tokens (default: the spec's model, else the default model)"),
            .option("--seed", "S", \.seed, help: "seed for derived categories when reading a plain file (default 1)"),
        ]
    }

    func validate() throws {
        if action == .build, out == nil { throw UsageError(message: "probes build: --out FILE is required") }
        if system != nil && template.kind != .chatml { throw UsageError(message: "--system: only chatml has a system turn (--template \(template.rawValue))") }
        guard seed >= 0 else { throw UsageError(message: "--seed: expected an integer >= 0, found \"\(seed)\"") }
    }
}

struct ExportVerb: Verb {
    static let name = "export"
    static let synopsis = "--db PATH --run ID [--step S] [--format gguf|hf|peft] --out FILE.gguf|DIR  |  --db PATH --format tensorboard [--run ID | --experiment NAME] --out DIR"
    static let summary = "Write a run's fine-tuned weights as a GGUF file for llama.cpp or a Hugging Face directory for transformers (a LoRA run's adapters merged in), or a LoRA run's adapters for PEFT; or runs' metrics and category curves for TensorBoard."

    var db: String?
    var runName: String?
    var experiment: String?
    var step: Int?
    var out: String?
    var f16 = false
    var checkpoints: String?
    var format = RunExport.Format.gguf

    static var options: [VerbOption<ExportVerb>] {
        [
            .option("--db", "PATH", \.db, help: "run store"),
            .option("--run", "ID", \.runName, help: "run id or name"),
            .option("--experiment", "NAME", \.experiment, help: "tensorboard: every run of this experiment (without --run or --experiment: every run of the store)"),
            .option("--step", "S", \.step, help: "checkpoint step (default: the latest)"),
            .option("--out", "FILE", \.out, help: "output GGUF file, or with --format hf or peft a new directory"),
            .choice("--format", "F", \.format, help: "gguf (default); hf: a directory that transformers' from_pretrained loads (config.json, F32 model.safetensors, tokenizer files); peft: a LoRA run's adapters (adapter_config.json, adapter_model.safetensors) for PeftModel.from_pretrained on the run's base; tensorboard: a new directory with one folder of event files per run (training metrics under TRL's names, each category's mean log-probability per split at each evaluation), for tensorboard --logdir DIR or W&B's sync_tensorboard"),
            .flag("--f16", \.f16, help: "GGUF: store tensors as F16 instead of F32"),
            .option("--checkpoints", "DIR", \.checkpoints, help: "checkpoint folder used by run (default: beside the database)"),
        ]
    }

    func validate() throws {
        guard let db else { throw UsageError(message: "--db: missing (the run store)") }
        try Commands.checkStorePath(db)
        guard out != nil else { throw UsageError(message: "--out: missing (the GGUF file or directory to write)") }
        if format == .tensorboard {
            if runName != nil && experiment != nil { throw UsageError(message: "--run and --experiment: give one (or neither, for every run)") }
            if step != nil || f16 || checkpoints != nil { throw UsageError(message: "--format tensorboard: no --step, --f16 or --checkpoints (it reads the store only)") }
            return
        }
        if experiment != nil { throw UsageError(message: "--experiment: only with --format tensorboard (a weights export is of one run: --run)") }
        guard runName != nil else { throw UsageError(message: "--run: missing (a run id or name; see alignscope status)") }
        if f16 && format != .gguf { throw UsageError(message: "--f16: only for --format gguf (the \(format.rawValue) export is F32)") }
    }
}

struct BenchVerb: Verb {
    static let name = "bench"
    static let synopsis = "[--model GGUF|DIR] [--json] [--checkpoint-activations] [--threads 1,2,...]"
    static let summary = "Measure sgemm FLOP/s, a training step, scoring and generation throughput (use a release build)."

    var model: String?
    var json = false
    var repeats = 3
    var checkpointActivations = false
    var threads: String?

    /// `--threads`' counts, in the order given.
    var threadCounts: [Int]? {
        threads.map { $0.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
    }

    static var options: [VerbOption<BenchVerb>] {
        [
            .option("--model", "GGUF", \.model, help: "model file (default models/SmolLM2-135M-Instruct.Q4_1.gguf), or a Hugging Face directory; a directory with only config.json is benchmarked at its shapes with random weights"),
            .flag("--checkpoint-activations", \.checkpointActivations, help: "train with activation checkpointing (compare with a run without)"),
            .flag("--json", \.json, help: "JSON output"),
            .option("--repeats", "N", \.repeats, help: "measurements per figure; the median is reported (default 3)"),
            .option("--threads", "1,2,...", \.threads, help: "instead of the full bench: the training step, an evaluation, generation and the step's parts (products, attention, elementwise, AdamW) at each thread count, alternating, with the speed-up and parallel efficiency against the first count (results do not depend on the count, only speed does)"),
        ]
    }

    func validate() throws {
        guard repeats >= 1 else { throw UsageError(message: "--repeats: expected an integer >= 1, found \(repeats)") }
        if let threads {
            let parts = threads.split(separator: ",", omittingEmptySubsequences: false)
            guard let counts = threadCounts, counts.count == parts.count, !counts.isEmpty, counts.allSatisfy({ (1...256).contains($0) }), Set(counts).count == counts.count else {
                throw UsageError(message: "--threads: expected distinct thread counts in [1, 256] separated by commas (e.g. 1,2,4), found \"\(threads)\"")
            }
            if checkpointActivations { throw UsageError(message: "--threads: measures the step without activation checkpointing; leave out --checkpoint-activations") }
        }
    }
}
