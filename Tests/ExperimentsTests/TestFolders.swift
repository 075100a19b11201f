import Foundation
import XCTest

extension XCTestCase {
    /// A new temporary folder for this test holding copies of the named fixtures (`Fixtures/NAME`); it is
    /// removed when the test ends.
    func temporaryFolder(_ prefix: String, copying fixtures: [String] = []) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("alignscope-\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        for name in fixtures {
            try FileManager.default.copyItem(at: Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!,
                                             to: dir.appendingPathComponent(name))
        }
        return dir
    }
}

/// The path of a model made by scripts/make-hf-fixtures.py (Tests/HFModelsTests/Fixtures/NAME).
func hfFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("HFModelsTests/Fixtures/\(name)").path
}
