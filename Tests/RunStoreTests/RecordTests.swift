import Base
import Foundation
import XCTest

@testable import RunStore

final class RecordTests: XCTestCase {
    /// Issue 32: one spec per name; a stored spec is never replaced.
    func testExperimentsAreOneRowPerNameAndKeepTheirSpec() throws {
        let store = try temporaryStore(self)
        let id = try store.recordExperiment(name: "sft", spec: "{a:1}", specSHA256: "one")
        XCTAssertEqual(try store.recordExperiment(name: "sft", spec: "{a:1}", specSHA256: "one"), id)
        XCTAssertThrowsError(try store.recordExperiment(name: "sft", spec: "{a:2}", specSHA256: "two")) { error in
            XCTAssertEqual("\(error)", "\(store.path): experiment \"sft\" is recorded with another spec (sha256 one, given two); a store keeps one spec per experiment name")
        }
        let record = try XCTUnwrap(try store.experiment(name: "sft"))
        XCTAssertEqual([record.spec, record.specSHA256], ["{a:1}", "one"])
        XCTAssertNotEqual(try store.recordExperiment(name: "dpo", spec: "{}", specSHA256: "x"), id)
        XCTAssertEqual(try store.query("SELECT count(*) FROM experiments"), [[2]])
        XCTAssertNil(try store.experiment(name: "nope"))
    }

    func testRunsAreIdempotentOnTheConfigSHAAndKeepTheirParams() throws {
        let store = try temporaryStore(self)
        let experiment = try store.recordExperiment(name: "sft", spec: "{}", specSHA256: "s")
        let params: [String: SQLiteValue] = ["train.lr": 1e-5, "seed": 2, "objective.kind": "sft"]
        let id = try store.recordRun(
            experimentID: experiment, name: "sft/lr=1e-05,seed=2", config: "{\"lr\":1e-5}", configSHA256: "c1",
            seed: 2, params: params)
        let again = try store.recordRun(
            experimentID: experiment, name: "sft/lr=1e-05,seed=2", config: "{\"lr\":1e-5}", configSHA256: "c1",
            seed: 2, params: params)
        XCTAssertEqual(id, again)
        XCTAssertEqual(try store.query("SELECT count(*) FROM runs"), [[1]])
        XCTAssertEqual(
            try store.query("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [.integer(id)]),
            [["objective.kind", "sft"], ["seed", 2], ["train.lr", 1e-5]])
        // params are queryable with their types: the point of flattening.
        XCTAssertEqual(try store.query("SELECT run_id FROM params WHERE key = 'train.lr' AND value < 2e-5"), [[.integer(id)]])

        let run = try XCTUnwrap(try store.run(id: id))
        XCTAssertEqual(run.experimentID, experiment)
        XCTAssertEqual(run.name, "sft/lr=1e-05,seed=2")
        XCTAssertEqual(run.config, "{\"lr\":1e-5}")
        XCTAssertEqual(run.configSHA256, "c1")
        XCTAssertEqual(run.seed, 2)
        XCTAssertEqual(run.status, .planned)
        XCTAssertNil(run.startedAt)
        XCTAssertNil(run.lastStep)
        XCTAssertFalse(run.createdAt.isEmpty)
        XCTAssertEqual(try store.run(name: "sft/lr=1e-05,seed=2"), run)
        XCTAssertEqual(try store.run(configSHA256: "c1"), run)
        XCTAssertEqual(try store.runs(experimentID: experiment), [run])
        XCTAssertNil(try store.run(id: 999))

        // Same name, new config (the spec changed): a new run; run(name:) gives the newest.
        let changed = try store.recordRun(
            experimentID: experiment, name: "sft/lr=1e-05,seed=2", config: "{\"lr\":1e-5,\"steps\":9}",
            configSHA256: "c2", seed: 2, params: params)
        XCTAssertNotEqual(changed, id)
        XCTAssertEqual(try store.run(name: "sft/lr=1e-05,seed=2")?.id, changed)
        XCTAssertEqual(try store.runs(experimentID: experiment).map(\.id), [id, changed])
    }

    func testRunOfUnknownExperimentIsRefusedByTheForeignKey() throws {
        let store = try temporaryStore(self)
        let error = assertStoreError(
            try store.recordRun(experimentID: 42, name: "x", config: "{}", configSHA256: "c", seed: 0, params: [:]))
        XCTAssertTrue(error?.description.contains("FOREIGN KEY constraint failed") ?? false, "\(String(describing: error))")
        XCTAssertEqual(try store.query("SELECT count(*) FROM runs"), [[0]])
    }

    func testProbeSetsAreIdempotentAndRefuseAChangedPrompt() throws {
        let store = try temporaryStore(self)
        let probes = [
            ProbeEntry(
                idx: 0, prompt: "[{\"role\":\"user\",\"content\":\"hi\"}]", split: "train",
                responses: [
                    ProbeResponse(category: "chosen", text: "Hello!", origin: "data"),
                    ProbeResponse(category: "rejected", text: "Go away.", origin: "data"),
                    ProbeResponse(category: "random", text: "Paris.", origin: "derived:other_prompt"),
                ]),
            ProbeEntry(
                idx: 1, prompt: "capital?", split: "heldout",
                responses: [ProbeResponse(category: "chosen", text: "Paris.", origin: "data")]),
        ]
        let ids = try store.recordProbeSet(name: "helpful", probes: probes)
        XCTAssertEqual(ids.count, 4)
        XCTAssertEqual(Set(ids.values).count, 4)
        XCTAssertEqual(try store.recordProbeSet(name: "helpful", probes: probes), ids)
        XCTAssertEqual(try store.responseIDs(probeSet: "helpful"), ids)
        XCTAssertEqual(try store.query("SELECT count(*) FROM probes"), [[2]])
        XCTAssertEqual(try store.query("SELECT count(*) FROM responses"), [[4]])
        let key = ResponseKey(probeIdx: 0, category: "random", text: "Paris.")
        XCTAssertEqual(try store.query("SELECT origin FROM responses WHERE id = ?", [.integer(ids[key]!)]), [["derived:other_prompt"]])

        // Dynamic categories are added per step; the same text is the same response.
        let probeIDs = try store.probeIDs(probeSet: "helpful")
        XCTAssertEqual(probeIDs.keys.sorted(), [0, 1])
        let greedy = try store.addResponse(probeID: probeIDs[0]!, category: "greedy", text: "Hi there", origin: "generated:greedy@10")
        XCTAssertEqual(try store.addResponse(probeID: probeIDs[0]!, category: "greedy", text: "Hi there", origin: "generated:greedy@20"), greedy)
        XCTAssertEqual(try store.responseIDs(probeSet: "helpful").count, 5)

        // The same set name with another prompt at an existing idx is a conflict; nothing is written.
        var changed = probes
        changed[1].prompt = "capital of France?"
        changed[0].responses.append(ProbeResponse(category: "variant", text: "Hey", origin: "data"))
        let error = assertStoreError(try store.recordProbeSet(name: "helpful", probes: changed))
        guard case .conflict(_, let detail)? = error else { return XCTFail("expected conflict, got \(String(describing: error))") }
        XCTAssertTrue(detail.contains("probe set 'helpful': probe 1 is already recorded with a different prompt"), detail)
        XCTAssertEqual(try store.query("SELECT count(*) FROM responses"), [[5]], "the failed set left nothing behind")
        // Under another name it is a separate set.
        XCTAssertEqual(try store.recordProbeSet(name: "helpful-v2", probes: changed).count, 5)
    }

    func testASplitOtherThanTrainOrHeldoutIsRefused() throws {
        let store = try temporaryStore(self)
        let error = assertStoreError(
            try store.recordProbeSet(name: "p", probes: [ProbeEntry(idx: 0, prompt: "x", split: "test", responses: [])]))
        XCTAssertTrue(error?.description.contains("CHECK constraint failed") ?? false, "\(String(describing: error))")
    }
}
