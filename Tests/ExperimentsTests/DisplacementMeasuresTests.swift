import Foundation
import Kernels
import Model
import Probes
import RunStore
import Training
import XCTest
@testable import Experiments

/// Issue 38: `eval.kl` (KL to the reference at every response position), where the mass went (`token_logprobs.gain_token`)
/// and CHES, each against a naive Double computation on the tiny preset through another route than the evaluation's:
/// distributions from `InferenceSession` (one sequence at a time), hidden states from the training forward.
final class DisplacementMeasuresTests: XCTestCase {
    func run(_ objective: String, eval: String = "kl: true, tokens: true", steps: Int = 4) throws -> (dir: URL, store: RunStore) {
        try runTinySpec("""
            { name: "dm", model: { preset: "tiny", seed: 0 }, template: "hh", objective: \(objective),
              data: { train: { path: "tiny-train.jsonl" }, probes: { path: "tiny-probes.jsonl" } },
              train: { steps: \(steps), batch_size: 2, lr: 3e-3, max_length: 160, warmup: 0 }, eval: { every: \(steps), \(eval) } }
            """, run: "dm", prefix: "displacement")
    }

    /// The preset's model with the run's final weights (its checkpoint), and one with its starting weights.
    func models(_ dir: URL, seed: Int = 0) throws -> (start: LlamaModel, final: LlamaModel) {
        let start = try ModelLoader.load(.preset(name: "tiny", seed: seed), experiment: nil, capacity: 512, maxSequenceLength: 512, threads: 1).model
        let final = try ModelLoader.load(.preset(name: "tiny", seed: 0), experiment: nil, capacity: 512, maxSequenceLength: 512, threads: 1).model
        let n = final.parameterCount
        let buffers = (0..<3).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: n) }
        defer { buffers.forEach { $0.deallocate() } }
        _ = try Checkpoint.read(RunExecutor.checkpointURL(root: dir, experiment: "dm", runName: "dm"), into: buffers)
        _ = final.parameters.update(fromContentsOf: buffers[0])
        return (start, final)
    }

    /// Every static response of the store: its id, category, probe, prompt and response tokens (as the evaluator encodes
    /// them: the tiny preset's byte tokenizer under the hh template).
    func responses(_ store: RunStore, _ dir: URL) throws -> [(id: Int64, category: String, probe: Int, prompt: [Int32], response: [Int32])] {
        let examples = try loadExamples(path: dir.appendingPathComponent("tiny-probes.jsonl").path)
        let rows = try store.query("SELECT r.id, r.category, p.idx, r.text FROM responses r JOIN probes p ON p.id = r.probe_id ORDER BY r.id")
        let tokenizer = try ModelLoader.load(.preset(name: "tiny", seed: 0), experiment: nil, capacity: 64, maxSequenceLength: 64, threads: 1).tokenizer
        return try rows.map { r in
            let pair = try PairEncoder.encode(prompt: examples[r[2].int!].promptSource, response: r[3].string!, tokenizer: tokenizer,
                                              template: .hh, maxLength: 160, file: "probes", line: 0)
            return (r[0].int64!, r[1].string!, r[2].int!, pair.prompt, pair.response)
        }
    }

    /// log-softmax rows at each position that predicts a response token, from a one-sequence KV cache.
    func rows(_ model: LlamaModel, _ prompt: [Int32], _ response: [Int32]) -> [[Double]] {
        let session = InferenceSession(model: model, capacity: prompt.count + response.count)
        var out: [[Double]] = [session.append(prompt).map(Double.init)]
        for t in response.dropLast() { out.append(session.append([t]).map(Double.init)) }
        return out
    }

    /// Both KLs, summed over a response's positions, from the starting weights (the reference: no objective.reference)
    /// to the final ones: 0 at step 0 (1e-9: the held rows and the evaluation's rows come from different passes), and at
    /// the last step the naive sums within 1e-4 relative + 1e-6 (float exponentials; two routes through the network).
    /// Each token's gain: the naive argmax of p_final - p_start where its runner-up is 1e-5 behind, and its value (1e-5).
    func testKLAndTheMassesGainMatchANaiveComputation() throws {
        let (dir, store) = try run(#"{ kind: "sft" }"#)
        let (start, final) = try models(dir)
        let measure = { (step: Int, name: String) in
            Dictionary(uniqueKeysWithValues: try store.query("SELECT response_id, value FROM measures WHERE step = \(step) AND name = '\(name)'")
                .map { ($0[0].int64!, $0[1].double!) })
        }
        let atStart = try measure(0, "kl_to_reference")
        XCTAssertFalse(atStart.isEmpty)
        for (_, kl) in atStart { XCTAssertEqual(kl, 0, accuracy: 1e-9) }
        XCTAssertEqual(try store.query("SELECT count(*) FROM token_logprobs WHERE step = 0 AND gain_token IS NOT NULL")[0][0].int, 0)
        let forward = try measure(4, "kl_to_reference"), reverse = try measure(4, "reverse_kl_to_reference")
        var checkedGains = 0
        for r in try responses(store, dir) {
            let p = rows(final, r.prompt, r.response), q = rows(start, r.prompt, r.response)
            var klFrom = 0.0, klTo = 0.0
            for (lp, lq) in zip(p, q) {
                for v in lp.indices {
                    klFrom += Foundation.exp(lq[v]) * (lq[v] - lp[v])
                    klTo += Foundation.exp(lp[v]) * (lp[v] - lq[v])
                }
            }
            XCTAssertGreaterThan(klFrom, 1e-3, "the run moved response \(r.id)")
            XCTAssertEqual(forward[r.id]!, klFrom, accuracy: 1e-6 + 1e-4 * klFrom, "response \(r.id)")
            XCTAssertEqual(reverse[r.id]!, klTo, accuracy: 1e-6 + 1e-4 * klTo, "response \(r.id)")
            let tokens = try store.query("SELECT position, gain_token, gain FROM token_logprobs WHERE step = 4 AND response_id = \(r.id) ORDER BY position")
            XCTAssertEqual(tokens.count, r.response.count)
            for t in tokens {
                let (lp, lq) = (p[t[0].int!], q[t[0].int!])
                let d = lp.indices.map { Foundation.exp(lp[$0]) - Foundation.exp(lq[$0]) }
                let best = d.indices.max { d[$0] < d[$1] }!
                let runnerUp = d.indices.filter { $0 != best }.map { d[$0] }.max()!
                if d[best] - runnerUp > 1e-5 {
                    XCTAssertEqual(t[1].int, best, "response \(r.id) position \(t[0].int!)")
                    checkedGains += 1
                }
                XCTAssertEqual(t[2].double!, d[best], accuracy: 1e-5)
            }
        }
        XCTAssertGreaterThan(checkedGains, 20)
    }

    /// The examples of analysis/README.md that read the rows of issue 38 (attribution, the tokens' gain) run on a
    /// trained run's store and return rows (the others run on the small store of RunStoreTests/AnalysisTests).
    func testTheReadmeExamplesOfAttributionAndGainRun() throws {
        let (_, store) = try run(#"{ kind: "sft" }"#, eval: "tokens: true, attribution: { every: 2 }")
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../analysis/README.md"), encoding: .utf8)
        let statements = readme.components(separatedBy: "```sql\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
            .flatMap { $0.components(separatedBy: ";\n") }
            .filter { $0.contains("influences") || $0.contains("gain_token") }
        XCTAssertEqual(statements.count, 2)
        for statement in statements { XCTAssertFalse(try store.query(statement).isEmpty, statement) }
    }

    /// With objective.reference, the KL is to that model: at step 0 it is the divergence of two different models
    /// (naive, as above), not 0.
    func testKLIsToTheObjectivesReference() throws {
        let (dir, store) = try run(#"{ kind: "dpo", beta: 0.5, reference: { preset: "tiny", seed: 1 } }"#, eval: "kl: true")
        let start = try ModelLoader.load(.preset(name: "tiny", seed: 0), experiment: nil, capacity: 512, maxSequenceLength: 512, threads: 1).model
        let reference = try ModelLoader.load(.preset(name: "tiny", seed: 1), experiment: nil, capacity: 512, maxSequenceLength: 512, threads: 1).model
        let stored = Dictionary(uniqueKeysWithValues: try store.query("SELECT response_id, value FROM measures WHERE step = 0 AND name = 'kl_to_reference'")
            .map { ($0[0].int64!, $0[1].double!) })
        for r in try responses(store, dir) {
            var kl = 0.0
            for (lp, lq) in zip(rows(start, r.prompt, r.response), rows(reference, r.prompt, r.response)) {
                for v in lp.indices { kl += Foundation.exp(lq[v]) * (lq[v] - lp[v]) }
            }
            XCTAssertGreaterThan(kl, 0.1)
            XCTAssertEqual(stored[r.id]!, kl, accuracy: 1e-4 * kl, "response \(r.id)")
        }
    }

    /// CHES on each probe's chosen row at every evaluation, and per training pair at the starting weights (pair_measures),
    /// against the definition computed in Double from hidden states of the training forward (`finalHiddenStates`):
    /// 1e-4 of |<H+,H->| + ||H+||^2 (two routes through the network; the difference of two large terms).
    func testCHESMatchesItsDefinition() throws {
        let (dir, store) = try run(#"{ kind: "dpo", beta: 0.5 }"#, eval: "tokens: false")
        let (start, final) = try models(dir)
        func naive(_ model: LlamaModel, _ prompt: [Int32], _ chosen: [Int32], _ rejected: [Int32]) -> (ches: Double, norm: Double, scale: Double) {
            func sum(_ response: [Int32]) -> [Double] {
                let batch = TokenBatch.scoring([(prompt, response)])
                let states = model.finalHiddenStates(batch, rows: (0..<response.count).map { prompt.count - 1 + $0 })
                return (0..<model.config.dim).map { j in states.reduce(0) { $0 + Double($1[j]) } }
            }
            let hp = sum(chosen), hm = sum(rejected)
            let cross = zip(hp, hm).reduce(0) { $0 + $1.0 * $1.1 }, own = hp.reduce(0) { $0 + $1 * $1 }
            let lp = Double(chosen.count), lm = Double(rejected.count)
            return (cross - own, cross / (lp * lm) - own / (lp * lp), abs(cross) + own)
        }
        let all = try responses(store, dir)
        var checked = 0
        for step in [0, 4] {
            let stored = try store.query("SELECT response_id, name, value FROM measures WHERE step = \(step) AND name IN ('ches', 'ches_norm')")
            for probe in Set(all.map(\.probe)) {
                guard let c = all.first(where: { $0.probe == probe && $0.category == "chosen" }),
                      let r = all.first(where: { $0.probe == probe && $0.category == "rejected" }) else { continue }
                let n = naive(step == 0 ? start : final, c.prompt, c.response, r.response)
                let ches = stored.first { $0[0].int64 == c.id && $0[1].string == "ches" }![2].double!
                let norm = stored.first { $0[0].int64 == c.id && $0[1].string == "ches_norm" }![2].double!
                XCTAssertEqual(ches, n.ches, accuracy: 1e-4 * n.scale, "step \(step) probe \(probe)")
                XCTAssertEqual(norm, n.norm, accuracy: 1e-4 * n.scale / Double(c.response.count * r.response.count) + 1e-6, "step \(step) probe \(probe)")
                checked += 1
            }
            XCTAssertEqual(stored.count, 2 * Set(all.filter { $0.category == "chosen" }.map(\.probe)).count, "only chosen rows carry CHES")
        }
        XCTAssertGreaterThan(checked, 2)
        // the training pairs, once, at the starting weights
        let lines = try String(contentsOf: dir.appendingPathComponent("tiny-train.jsonl"), encoding: .utf8).split(separator: "\n")
        let pairs = try store.query("SELECT example, data_line, name, value FROM pair_measures WHERE step = 0 ORDER BY example, name")
        XCTAssertEqual(pairs.count, 2 * lines.count)
        let train = try loadExamples(path: dir.appendingPathComponent("tiny-train.jsonl").path)
        let tokenizer = try ModelLoader.load(.preset(name: "tiny", seed: 0), experiment: nil, capacity: 64, maxSequenceLength: 64, threads: 1).tokenizer
        let c = try PairEncoder.encode(prompt: train[1].promptSource, response: train[1].chosen!, tokenizer: tokenizer, template: .hh,
                                       maxLength: 160, file: "train", line: 2)
        let r = try PairEncoder.encode(prompt: train[1].promptSource, response: train[1].rejected!, tokenizer: tokenizer, template: .hh,
                                       maxLength: 160, file: "train", line: 2)
        let n = naive(start, c.prompt, c.response, r.response)
        XCTAssertEqual(pairs[2][1].int, 2, "example 1 is line 2")
        XCTAssertEqual(pairs[2][2].string, "ches")
        XCTAssertEqual(pairs[2][3].double!, n.ches, accuracy: 1e-4 * n.scale)
    }
}
