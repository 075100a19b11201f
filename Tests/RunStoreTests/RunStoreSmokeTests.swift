import XCTest
@testable import RunStore

final class RunStoreSmokeTests: XCTestCase {
    func testModuleLinks() {
        XCTAssertTrue(true)
    }
}
