import XCTest

@testable import Reports

final class CSVWriterTests: XCTestCase {
    func testFieldsAreQuotedOnlyWhenNeeded() {
        XCTAssertEqual(CSVWriter.field("plain"), "plain")
        XCTAssertEqual(CSVWriter.field(""), "")
        XCTAssertEqual(CSVWriter.field("-1.5e-05"), "-1.5e-05")
        XCTAssertEqual(CSVWriter.field("a,b"), "\"a,b\"")
        XCTAssertEqual(CSVWriter.field("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(CSVWriter.field("two\nlines"), "\"two\nlines\"")
        XCTAssertEqual(CSVWriter.field("cr\rhere"), "\"cr\rhere\"")
        XCTAssertEqual(CSVWriter.field("crlf\r\nhere"), "\"crlf\r\nhere\"")
        XCTAssertEqual(CSVWriter.field(" padded"), "\" padded\"")
        XCTAssertEqual(CSVWriter.field("ünïcødé 😀"), "ünïcødé 😀")
    }

    func testWriterProducesHeaderAndLFRecordsThatReadBack() {
        var csv = CSVWriter(header: ["run", "note", "value"])
        let records = [
            ["lr=1e-05,seed=\"1\"", "multi\nline", "-12.5"],
            ["plain", "", "3"],
            ["\"", ",", "\r\n"],
        ]
        for record in records { csv.append(record) }
        XCTAssertTrue(csv.contents.hasPrefix("run,note,value\n"))
        XCTAssertTrue(csv.contents.hasSuffix("\n"))
        XCTAssertEqual(csv.contents.components(separatedBy: "\n").first, "run,note,value")
        XCTAssertTrue(csv.contents.contains("\"lr=1e-05,seed=\"\"1\"\"\",\"multi\nline\",-12.5\n"), csv.contents)
        XCTAssertEqual(parseCSV(csv.contents), [["run", "note", "value"]] + records)
    }
}
