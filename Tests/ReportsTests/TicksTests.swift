import Foundation
import XCTest

@testable import Reports

final class TicksTests: XCTestCase {
    /// Checks what every tick set must satisfy: it encloses the range, the step is constant and
    /// round (1, 2 or 5 × 10^k), and the number of ticks is near `count`.
    func assertNice(_ lo: Double, _ hi: Double, count: Int = 5, file: StaticString = #filePath, line: UInt = #line) {
        let ticks = niceTicks(min: lo, max: hi, count: count)
        let (a, b) = (min(lo, hi), max(lo, hi))
        guard ticks.count >= 2 else { return XCTFail("\(lo)...\(hi): \(ticks)", file: file, line: line) }
        XCTAssertLessThanOrEqual(ticks.first!, a + abs(a) * 1e-12, "\(lo)...\(hi): \(ticks)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(ticks.last!, b - abs(b) * 1e-12, "\(lo)...\(hi): \(ticks)", file: file, line: line)
        XCTAssertLessThanOrEqual(ticks.count, 2 * count + 2, "\(lo)...\(hi): \(ticks)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(ticks.count, max(2, count / 2), "\(lo)...\(hi): \(ticks)", file: file, line: line)
        // The step, recovered from the ends (subtraction of nearby large ticks loses digits).
        let approximate = (ticks.last! - ticks.first!) / Double(ticks.count - 1)
        let exponent = log10(approximate).rounded(.down)
        let fraction = approximate / pow(10, exponent)
        let mantissa = try! XCTUnwrap([1.0, 2, 5, 10].first { abs(fraction - $0) < 1e-6 }, "step \(approximate) of \(ticks) is not 1/2/5 × 10^k", file: file, line: line)
        let step = mantissa * pow(10, exponent)
        // Rounding slack of doubles of the ticks' magnitude.
        let slack = 8 * (ticks.map(abs).max()!).ulp + step * 1e-9
        for (i, tick) in ticks.enumerated() {
            XCTAssertEqual(tick, ticks[0] + Double(i) * step, accuracy: slack, "uneven \(ticks)", file: file, line: line)
            // Every tick is a whole multiple of the step (round numbers, 0 included when crossed).
            XCTAssertEqual(tick, (tick / step).rounded() * step, accuracy: slack, "\(tick) not a multiple of \(step)", file: file, line: line)
        }
    }

    func testManyRangesGiveRoundEnclosingTicks() {
        let ranges: [(Double, Double)] = [
            (0, 60), (0, 1), (0, 10), (-3.2, 1.1), (-120.5, -80.2), (-1, 1), (0.3, 0.9), (1e-9, 2e-9),
            (-2e-9, 5e-9), (1e-5, 3e-5), (0, 3e-5), (123_456, 987_654), (-1e12, 3e12), (1e300, 1e301),
            (-7, -6.99), (99.5, 100.5), (0, 0.001), (Double.leastNonzeroMagnitude, 1e-300), (42, 41), (-0.001, 0.0004), (1, 1.0000001),
        ]
        for (lo, hi) in ranges {
            for count in [2, 3, 5, 6, 10] { assertNice(lo, hi, count: count) }
        }
    }

    func testKnownTickSets() {
        XCTAssertEqual(niceTicks(min: 0, max: 60, count: 7), [0, 10, 20, 30, 40, 50, 60])
        XCTAssertEqual(niceTicks(min: -3.2, max: 1.1, count: 6), [-4, -3, -2, -1, 0, 1, 2])
        XCTAssertEqual(niceTicks(min: 0.3, max: 0.9, count: 7), [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
        XCTAssertEqual(niceTicks(min: 1e-5, max: 3e-5, count: 6), [1e-5, 1.5e-5, 2e-5, 2.5e-5, 3e-5])
        XCTAssertEqual(niceTicks(min: -1e12, max: 3e12, count: 5), [-1e12, 0, 1e12, 2e12, 3e12])
        XCTAssertEqual(niceTicks(min: 1e-9, max: 2e-9, count: 6), [1e-9, 1.2e-9, 1.4e-9, 1.6e-9, 1.8e-9, 2e-9])
        // Exact decimal values, not 0.30000000000000004.
        XCTAssertEqual(niceTicks(min: 0.3, max: 0.9, count: 7).map(\.description), ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"])
    }

    func testDegenerateAndInvalidRanges() {
        // A single point is widened around it and stays inside.
        let five = niceTicks(min: 5, max: 5, count: 5)
        XCTAssertTrue(five.first! < 5 && five.last! > 5, "\(five)")
        XCTAssertTrue(five.contains(5), "\(five)")
        XCTAssertEqual(niceTicks(min: 0, max: 0, count: 5), [-1, -0.5, 0, 0.5, 1])
        let negative = niceTicks(min: -1e-9, max: -1e-9, count: 5)
        XCTAssertTrue(negative.first! < -1e-9 && negative.last! > -1e-9, "\(negative)")
        assertNice(-1e-9, -1e-9)
        assertNice(1e300, 1e300)
        // Reversed bounds are sorted.
        XCTAssertEqual(niceTicks(min: 60, max: 0, count: 7), niceTicks(min: 0, max: 60, count: 7))
        // Non-finite input has no ticks; an overflowing width falls back to the bounds.
        XCTAssertEqual(niceTicks(min: .nan, max: 1), [])
        XCTAssertEqual(niceTicks(min: 0, max: .infinity), [])
        XCTAssertEqual(niceTicks(min: -1.7e308, max: 1.7e308), [-1.7e308, 1.7e308])
    }

    func testTickLabels() {
        XCTAssertEqual(tickLabels([0, 10, 20]), ["0", "10", "20"])
        XCTAssertEqual(tickLabels([-1, -0.5, 0, 0.5, 1]), ["-1.0", "-0.5", "0.0", "0.5", "1.0"])
        XCTAssertEqual(tickLabels([0.3, 0.4, 0.5]), ["0.3", "0.4", "0.5"])
        XCTAssertEqual(tickLabels([-0.001, -0.0005, 0, 0.0005]), ["-0.0010", "-0.0005", "0.0000", "0.0005"])
        XCTAssertEqual(tickLabels([0, 5e-6, 1e-5, 1.5e-5]), ["0", "5e-6", "1e-5", "1.5e-5"])
        XCTAssertEqual(tickLabels([1e-9, 1.2e-9, 1.4e-9]), ["1e-9", "1.2e-9", "1.4e-9"])
        XCTAssertEqual(tickLabels([-1e12, 0, 1e12, 2e12]), ["-1e12", "0", "1e12", "2e12"])
        XCTAssertEqual(tickLabels([0, 500_000, 1_000_000]), ["0", "5e5", "1e6"])
        // Labels of computed ticks are distinct for every range above.
        for (lo, hi) in [(1e-9, 2e-9), (0.3, 0.9), (-120.5, -80.2), (1e300, 1e301), (1, 1.0000001)] {
            let labels = tickLabels(niceTicks(min: lo, max: hi, count: 6))
            XCTAssertEqual(Set(labels).count, labels.count, "duplicate labels \(labels) for \(lo)...\(hi)")
        }
    }

    func testNumberFormats() {
        XCTAssertEqual(NumberFormat.coordinate(12.345), "12.35")
        XCTAssertEqual(NumberFormat.coordinate(-0.001), "0")
        XCTAssertEqual(NumberFormat.coordinate(-3), "-3")
        XCTAssertEqual(NumberFormat.coordinate(0.1 + 0.2), "0.3")
        XCTAssertEqual(NumberFormat.fixed(2.5, decimals: 0), "3")
        XCTAssertEqual(NumberFormat.fixed(-2.5, decimals: 0), "-3")
        XCTAssertEqual(NumberFormat.fixed(1.5, decimals: 3, trim: false), "1.500")
        XCTAssertEqual(NumberFormat.general(-12.3456789012345), "-12.3456789")
        XCTAssertEqual(NumberFormat.general(1e-5), "1e-05")
        XCTAssertEqual(NumberFormat.general(3), "3")
        XCTAssertEqual(NumberFormat.general(-0.0), "0")
        XCTAssertEqual(NumberFormat.general(.nan), "")
        XCTAssertEqual(NumberFormat.general(-.infinity), "-Inf")
    }
}
