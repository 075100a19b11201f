import Base
/// Lifecycle of a run, as stored in `runs.status`.
public enum RunStatus: String, Sendable, Codable, CaseIterable {
    /// Recorded by `run`/`plan`, never started.
    case planned
    /// Claimed by a process (`runs.owner`), which refreshes `runs.heartbeat_at`.
    case running
    /// Trained and evaluated to the last step; never claimed again.
    case finished
    /// Stopped by an error (NaN loss, bad input...); `runs.error` says why.
    case failed
    /// Stopped on purpose (Ctrl-C) or found with a dead owner; resumable.
    case interrupted
}

/// One row of `experiments`.
public struct ExperimentRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var spec: String
    public var specSHA256: String
    public var createdAt: String
}

/// One row of `runs`, every column.
public struct RunRecord: Sendable, Equatable {
    public var id: Int64
    public var experimentID: Int64
    public var name: String
    /// The resolved config, canonical JSON.
    public var config: String
    public var configSHA256: String
    public var seed: Int64
    public var status: RunStatus
    public var error: String?
    public var createdAt: String
    public var startedAt: String?
    public var finishedAt: String?
    /// Last step whose results are complete in the store (set by the harness, e.g. at checkpoints).
    public var lastStep: Int?
    /// `host:pid` of the process holding the run (lease), if any.
    public var owner: String?
    public var heartbeatAt: String?
}

/// One probe to record: a prompt of a probe set and its responses.
public struct ProbeEntry: Sendable, Equatable {
    /// Position of the probe in its set (stable across runs).
    public var idx: Int
    /// The prompt as the harness wants to read it back (e.g. JSON of the chat messages).
    public var prompt: String
    /// `train` or `heldout`.
    public var split: String
    public var responses: [ProbeResponse]

    public init(idx: Int, prompt: String, split: String, responses: [ProbeResponse]) {
        self.idx = idx
        self.prompt = prompt
        self.split = split
        self.responses = responses
    }
}

/// Identifies a response within a probe set: the probe's `idx`, the category and the text.
public struct ResponseKey: Sendable, Hashable {
    public var probeIdx: Int
    public var category: String
    public var text: String

    public init(probeIdx: Int, category: String, text: String) {
        self.probeIdx = probeIdx
        self.category = category
        self.text = text
    }
}

/// One scored response at one evaluation step.
public struct LogprobRow: Sendable, Equatable {
    public var responseID: Int64
    /// Sum of the response tokens' natural-log probabilities given the prompt.
    public var logprob: Double
    public var nTokens: Int
    /// Rows of `measures`: measure name (`Base.Measure`) -> value.
    public var measures: [String: Double]
    /// Rows of `token_logprobs`, one per response token in order (empty unless `eval.tokens`).
    public var tokens: [TokenRow]

    public init(responseID: Int64, logprob: Double, nTokens: Int, measures: [String: Double] = [:], tokens: [TokenRow] = []) {
        self.responseID = responseID
        self.logprob = logprob
        self.nTokens = nTokens
        self.measures = measures
        self.tokens = tokens
    }
}

/// One response token at one evaluation (`token_logprobs`): the token, its log-probability given the
/// prompt and the earlier response tokens, and the most likely token at that position.
public struct TokenRow: Sendable, Equatable {
    public var token: Int32
    public var logprob: Double
    public var argmax: Int32
    /// The token whose probability rose most since the run's starting weights, and by how much (schema version 7; nil at
    /// step 0 and for responses made at the evaluation).
    public var gainToken: Int32?
    public var gain: Double?

    public init(token: Int32, logprob: Double, argmax: Int32, gainToken: Int32? = nil, gain: Double? = nil) {
        self.token = token
        self.logprob = logprob
        self.argmax = argmax
        self.gainToken = gainToken
        self.gain = gain
    }
}

/// What `alignscope status` shows for one run.
public struct RunStatusRow: Sendable, Equatable {
    public var runID: Int64
    public var experiment: String
    public var name: String
    public var status: RunStatus
    public var lastStep: Int?
    /// `train_metrics` value named `loss` at the highest step that has one.
    public var lastLoss: Double?
    public var lastLossStep: Int?
    public var startedAt: String?
    public var finishedAt: String?
    public var owner: String?
    public var heartbeatAt: String?
    public var error: String?
    /// Seconds since `heartbeatAt` when the row was read.
    public var heartbeatAge: Double?

    /// True when the run is `running` and its owner is alive (see `RunStore.isOwnerAlive`);
    /// a `running` run with a dead owner is really interrupted and will be taken over.
    public func isHeldByLiveOwner(staleAfter: Double = 120) -> Bool {
        guard status == .running, let owner else { return false }
        return RunStore.isOwnerAlive(owner, heartbeatAge: heartbeatAge, staleAfter: staleAfter)
    }
}

/// The fingerprint of one file a run reads: its path as the run resolved it and its content's sha256.
public struct RunInput: Sendable, Equatable {
    public var path: String
    public var sha256: String
    public init(path: String, sha256: String) {
        self.path = path
        self.sha256 = sha256
    }
}

/// One sampled response of an online objective (`samples` table: Schema version 4).
public struct SampleRecord: Sendable, Equatable {
    public var dataLine: Int
    public var sample: Int
    public var prompt: String
    public var text: String
    public var reward: Double
    public var kl: Double
    public var advantage: Double
    public var tokens: Int
    public var eos: Bool

    public init(dataLine: Int, sample: Int, prompt: String, text: String, reward: Double, kl: Double, advantage: Double, tokens: Int, eos: Bool) {
        self.dataLine = dataLine
        self.sample = sample
        self.prompt = prompt
        self.text = text
        self.reward = reward
        self.kl = kl
        self.advantage = advantage
        self.tokens = tokens
        self.eos = eos
    }
}

/// One probe response's attribution at a step (`attributions`) and its decomposition (`influences`).
public struct AttributionRecord: Sendable, Equatable {
    public struct Influence: Sendable, Equatable {
        /// The example's index in the training data (from 0), or -1 for the part carried over from earlier steps.
        public var example: Int
        /// Its line in the data file (nil for the carried part).
        public var dataLine: Int?
        public var contribution: Double
        /// cos(g_o, -g_example), signed by the example's descent direction (nil for the carried part).
        public var cosine: Double?

        public init(example: Int, dataLine: Int?, contribution: Double, cosine: Double?) {
            self.example = example
            self.dataLine = dataLine
            self.contribution = contribution
            self.cosine = cosine
        }
    }

    public var responseID: Int64
    public var logprob: Double
    public var predicted: Double
    public var observed: Double
    public var influences: [Influence]

    public init(responseID: Int64, logprob: Double, predicted: Double, observed: Double, influences: [Influence]) {
        self.responseID = responseID
        self.logprob = logprob
        self.predicted = predicted
        self.observed = observed
        self.influences = influences
    }
}
