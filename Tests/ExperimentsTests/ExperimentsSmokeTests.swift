import XCTest
@testable import Experiments

final class ExperimentsSmokeTests: XCTestCase {
    func testModuleLinks() {
        XCTAssertTrue(true)
    }
}
