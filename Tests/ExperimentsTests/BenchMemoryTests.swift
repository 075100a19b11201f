import Foundation
import Kernels
@testable import Experiments
@testable import Model
import XCTest

/// `alignscope bench` must report its own peak memory. `getrusage`'s ru_maxrss carries the parent's
/// peak across fork + exec, so a bench started from a large process (the side-by-side script runs it
/// after PyTorch has grown to 5.6 GiB) reported PyTorch's peak as ours.
final class BenchMemoryTests: XCTestCase {
    func testBenchStartedFromALargeProcessReportsItsOwnPeak() throws {
        let bin = try ReliabilityTests.binary()
        // Touch 1 GiB here, so that a child inheriting this process's peak would report more than 1 GiB.
        let size = 1 << 30
        let big = UnsafeMutablePointer<UInt8>.allocate(capacity: size)
        defer { big.deallocate() }
        for i in stride(from: 0, to: size, by: 4096) { big[i] = 1 }

        let p = Process()
        p.executableURL = bin
        p.arguments = ["bench", "--json", "--repeats", "1"]
        // In a folder without models/, the bench runs the tiny preset (a few MiB).
        p.currentDirectoryURL = FileManager.default.temporaryDirectory
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let peak = try XCTUnwrap(json["peakResidentBytes"] as? Int)
        XCTAssertGreaterThan(peak, 1 << 20)
        XCTAssertLessThan(peak, size, "the bench reported its parent's peak, not its own")
        XCTAssertEqual(big[4096], 1)
    }

    /// The memory check before a run counts the weights' bf16 copy that bf16 scoring and sampling hold
    /// (`withRoundedWeights`): exactly the copy's bytes more than an fp32 run's estimate.
    func testTheMemoryEstimateCountsTheBF16Copy() {
        let config = LlamaConfig.tiny()
        let model = LlamaModel(config: config, maxTokens: 16)
        let extra = ModelLoader.trainingBytes(config, tokens: 256, bf16: true) - ModelLoader.trainingBytes(config, tokens: 256)
        XCTAssertEqual(extra, Double(2 * model.parameterCount))
        guard Products.bf16Supported else { return }
        let copyBytes = model.withRoundedWeights(.bf16) { (model.roundedStorage?.count ?? 0) * MemoryLayout<UInt16>.stride }
        XCTAssertEqual(Double(copyBytes), extra)
    }
}
