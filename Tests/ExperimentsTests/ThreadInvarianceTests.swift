import Base
import Foundation
import GGUF
import Model
@testable import RunStore
import Training
import XCTest
@testable import Experiments

/// Issue 40: the thread count changes only the speed. A tiny-preset run with every kind of stored value (products,
/// attention, norms, AdamW, the evaluation's measures and per-token rows, greedy decoding, KL to the start) recorded
/// with 1, 2 and 3 threads holds the same rows bit for bit.
final class ThreadInvarianceTests: XCTestCase {
    func spec(threads: Int) -> String {
        """
        {
          name: "threads",
          model: { preset: "tiny", seed: 0 },
          template: "hh",
          data: {
            train: { path: "tiny-train.jsonl" },
            probes: {
              path: "tiny-probes.jsonl",
              categories: {
                chosen: "chosen", rejected: "rejected",
                greedy: { greedy: { max_tokens: 6 } },
                argmax: { argmax: { field: "chosen" } },
              },
            },
          },
          train: { steps: 4, batch_size: 2, lr: 3e-3, max_length: 160 },
          eval: { every: 2, tokens: true, kl: true },
          threads: \(threads),
        }
        """
    }

    /// Every stored value of the run but timings and the run's identity (which holds `threads` today).
    func rows(_ store: RunStore) throws -> [String: [[SQLiteValue]]] {
        [
            "logprobs": try store.query("SELECT l.step, s.category, s.text, l.logprob, l.n_tokens FROM logprobs l JOIN responses s ON s.id = l.response_id ORDER BY 1, 2, 3"),
            "measures": try store.query("SELECT m.step, s.category, s.text, m.name, m.value FROM measures m JOIN responses s ON s.id = m.response_id ORDER BY 1, 2, 3, 4"),
            "token_logprobs": try store.query("SELECT * FROM token_logprobs ORDER BY 1, 2, 3, 4"),
            "train_metrics": try store.query("""
                SELECT step, name, value FROM train_metrics WHERE name NOT IN ('elapsed', 'tokens_per_s') ORDER BY 1, 2
                """),
        ]
    }

    func testOneTwoAndThreeThreadsStoreTheSameValues() throws {
        var reference: [String: [[SQLiteValue]]]?
        let saved = Threads.count
        defer { Threads.count = saved }
        for threads in [1, 2, 3] {
            let (_, store) = try runTinySpec(spec(threads: threads), run: "threads", prefix: "threads-\(threads)")
            let got = try rows(store)
            XCTAssertGreaterThan(got["logprobs"]?.count ?? 0, 0)
            if let reference {
                for (table, values) in reference {
                    XCTAssertEqual(got[table]?.count, values.count, "\(table) with \(threads) threads")
                    let differing = zip(values, got[table] ?? []).filter { $0 != $1 }
                    XCTAssertTrue(differing.isEmpty, "\(table) with \(threads) threads: \(differing.count) rows differ from 1 thread's, first \(differing.first.map { "\($0)" } ?? "")")
                }
            } else {
                reference = got
            }
        }
    }

    /// One SmolLM2 training step (2 sequences of 96 tokens: the products on oneDNN, the head, attention, AdamW) with 1,
    /// 2 and 3 threads: the same log-probabilities and the same updated weights, bit for bit.
    func testOneSmolLM2StepIsTheSameWithOneTwoAndThreeThreads() throws {
        guard let path = ProcessInfo.processInfo.environment["ALIGNSCOPE_MODEL"] else { throw XCTSkip("ALIGNSCOPE_MODEL is not set") }
        let model = try PretrainedModel.load(path: path, maxTokens: 192, maxSequenceLength: 96).model
        var state: UInt64 = 40
        let tokens = (0..<192).map { _ -> Int32 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int32((state >> 33) % UInt64(model.config.vocabSize))
        }
        var targets = [Int32](repeating: -1, count: 192)
        for s in 0..<2 { for i in 0..<95 { targets[s * 96 + i] = tokens[s * 96 + i + 1] } }
        let batch = TokenBatch(tokens: tokens, targets: targets, sequenceStarts: [0, 96])
        let start = Array(model.parameters)
        let train = try JSONDecoder().decode(TrainSettings.self, from: Data(#"{"steps": 10, "batch_size": 2, "lr": 1e-4, "warmup": 0}"#.utf8))
        let saved = Threads.count
        defer { Threads.count = saved }
        var reference: (logprobs: [Float], weights: UInt64)?
        for threads in [1, 2, 3] {
            Threads.count = threads
            _ = model.parameters.update(fromContentsOf: start)
            model.zeroGradients()
            let logprobs = Array(model.forward(batch, training: true))
            let dlp = targets.map { $0 >= 0 ? Float(-1.0 / 190) : 0 }
            dlp.withUnsafeBufferPointer { model.backward($0.baseAddress!) }
            let optimizer = AdamW(parameterCount: model.trainableCount, config: AdamWConfig(beta1: train.beta1, beta2: train.beta2, eps: 1e-8, weightDecay: train.weightDecay))
            _ = Trainer.update(model: model, optimizer: optimizer, train: train, step: 1)
            // FNV-1a over the weights' bits
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for w in model.parameters { hash = (hash ^ UInt64(w.bitPattern)) &* 0x100_0000_01b3 }
            XCTAssertTrue(logprobs.allSatisfy { $0.isFinite })
            if let reference {
                XCTAssertEqual(logprobs, reference.logprobs, "log-probabilities with \(threads) threads")
                XCTAssertEqual(hash, reference.weights, "updated weights with \(threads) threads")
            } else {
                reference = (logprobs, hash)
                XCTAssertNotEqual(Array(model.parameters.prefix(4096)), Array(start.prefix(4096)), "the step moved the weights")
            }
        }
    }
}
