import Base
import Foundation
import XCTest
@testable import Probes

/// Issue 15 (items 3, 4, 9): line ends, UTF-8 and non-regular files, and generator commands that
/// answer in CRLF, in bad bytes, or never.
final class TextFileTests: XCTestCase {
    func testLinesEndAtLFCRLFOrALoneCR() {
        func lines(_ s: String) -> [String] { TextFile.lines(s).map { "\($0.number):\($0.text)" } }
        XCTAssertEqual(lines("a\nb"), ["1:a", "2:b"])
        XCTAssertEqual(lines("a\r\nb\r\n"), ["1:a", "2:b"])
        XCTAssertEqual(lines("a\rb\r"), ["1:a", "2:b"])
        XCTAssertEqual(lines("a\r\n\nb\rc"), ["1:a", "2:", "3:b", "4:c"])
        XCTAssertEqual(lines("\r\n\r\n"), ["1:", "2:"])
        XCTAssertEqual(lines(""), [])
        XCTAssertEqual(lines("é\r\nü"), ["1:é", "2:ü"])
    }

    func testCRLFCROnlyAndMixedFilesReadAsTheirLFCopy() throws {
        let dir = try temporaryDirectory(self)
        let lines = [#"{"prompt": "How?", "chosen": "Like this.", "rejected": "No."}"#, "",
                     #"{"prompt": "Why?", "chosen": "Because.", "rejected": "Dunno."}"#,
                     #"{"prompt": "Who?", "chosen": "Me.", "rejected": "You."}"#]
        func write(_ name: String, _ text: String) throws -> [PreferenceExample] {
            let url = dir.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            return try loadExamples(path: url.path)
        }
        let lf = try write("lf.jsonl", lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(lf.map(\.line), [1, 3, 4])
        for (name, text) in [("crlf.jsonl", lines.joined(separator: "\r\n") + "\r\n"), ("cr.jsonl", lines.joined(separator: "\r")),
                             ("mixed.jsonl", lines[0] + "\r\n" + lines[1] + "\r" + lines[2] + "\n" + lines[3])] {
            let other = try write(name, text)
            XCTAssertEqual(other.map(\.line), lf.map(\.line), name)
            XCTAssertEqual(other.map(\.prompt), lf.map(\.prompt), name)
            XCTAssertEqual(other.map(\.chosen), lf.map(\.chosen), name)
            XCTAssertEqual(other.map(\.rejected), lf.map(\.rejected), name)
        }
    }

    func testInvalidUTF8IsNamedByItsOffset() throws {
        XCTAssertNil(TextFile.firstInvalidUTF8(Array("héllo €".utf8)))
        XCTAssertEqual(TextFile.firstInvalidUTF8([0x61, 0xC3, 0x28]), 1)            // a lead byte without its continuation
        XCTAssertEqual(TextFile.firstInvalidUTF8([0x61, 0x62, 0xE2, 0x82]), 2)      // truncated at the end
        XCTAssertEqual(TextFile.firstInvalidUTF8([0xC0, 0x80]), 0)                  // overlong
        XCTAssertEqual(TextFile.firstInvalidUTF8([0x41, 0xED, 0xA0, 0x80]), 1)      // a UTF-16 surrogate
        XCTAssertEqual(TextFile.firstInvalidUTF8([0x41, 0xFF]), 1)
        let url = try temporaryDirectory(self).appendingPathComponent("bad.jsonl")
        try Data(#"{"prompt": "a", "chosen": "b"#.utf8 + [0xFF] + #""}"#.utf8).write(to: url)
        assertProbesError(.invalidText(file: url.path, offset: 28)) { try loadExamples(path: url.path) }
    }

    func testOnlyRegularFilesAreOpened() throws {
        let dir = try temporaryDirectory(self)
        let fifo = dir.appendingPathComponent("fifo.jsonl").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        assertProbesError(.unreadable(file: fifo, reason: "not a regular file (a FIFO)")) { try loadExamples(path: fifo) }
        XCTAssertThrowsError(try TextFile.read(dir.path)) {
            XCTAssertEqual($0 as? TextFile.FileError, .unreadable(file: dir.path, reason: "not a regular file (a directory)"))
        }
        let missing = dir.appendingPathComponent("none.jsonl").path
        XCTAssertThrowsError(try TextFile.read(missing)) {
            XCTAssertEqual($0 as? TextFile.FileError, .unreadable(file: missing, reason: "no such file"))
        }
    }

    let requests = (0..<2).map { GenerationRequest(id: $0, prompt: [user("q\($0)")], text: "t\($0)", template: "{text}", seed: 0) }

    func testGeneratorOutputInCRLFIsRead() throws {
        let answers = #"printf '{"id": 1, "text": "one"}\r\n{"id": 0, "text": "zero"}\r\n'"#
        XCTAssertEqual(try ExternalCommandGenerator(argv: ["/bin/sh", "-c", "cat >/dev/null; " + answers]).generate(requests), ["zero", "one"])
    }

    func testGeneratorOutputThatIsNotUTF8IsRefused() {
        let argv = ["/bin/sh", "-c", #"cat >/dev/null; printf '{"id": 0, "text": "a"}\n{"id": 1, "text": "\377"}\n'"#]
        assertProbesError(.commandOutput(command: argv.joined(separator: " "), line: 2, reason: "invalid UTF-8 at byte offset 42 of its output")) {
            try ExternalCommandGenerator(argv: argv).generate(requests)
        }
    }

    func testAGeneratorPastItsTimeoutIsStopped() {
        let argv = ["/bin/sh", "-c", "sleep 30"]
        let started = Date()
        assertProbesError(.commandFailed(command: argv.joined(separator: " "),
                                         reason: "no answer within its timeout of 0.3 s (stopped; raise \"timeout\" in its generate spec)")) {
            try ExternalCommandGenerator(argv: argv, timeout: 0.3).generate(requests)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }

    func testTheTimeoutIsASpecKey() throws {
        let decode = { (text: String) in try JSONDecoder().decode(CategorySource.self, from: Data(text.utf8)) }
        guard case .generate(let spec) = try decode(#"{"generate": {"command": ["x"], "template": "t", "timeout": 5}}"#) else { return XCTFail() }
        XCTAssertEqual(spec.timeout, 5)
        guard case .generate(let defaulted) = try decode(#"{"generate": {"command": ["x"], "template": "t"}}"#) else { return XCTFail() }
        XCTAssertEqual(defaulted.timeout, GeneratorSpec.defaultTimeout)
        XCTAssertThrowsError(try decode(#"{"generate": {"command": ["x"], "template": "t", "timeout": 0}}"#))
        XCTAssertThrowsError(try decode(#"{"generate": {"command": ["x"], "template": "t", "seed": -1}}"#))
    }
}
