import XCTest
@testable import Probes

final class ProbesSmokeTests: XCTestCase {
    func testModuleLinks() {
        XCTAssertTrue(true)
    }
}
