// libFuzzer target: the JSONL example loader (prompt/chosen/rejected, messages, HH transcripts) on
// arbitrary text. Built only with ALIGNSCOPE_FUZZ set. Any input must give examples or a thrown error.
import Foundation
import FuzzDriver
@testable import Probes

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONL(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let examples = try? parseExamples(text, file: "fuzz.jsonl") else { return 0 }
    for example in examples {
        _ = try? example.text(of: "chosen")
        _ = try? example.text(of: "rejected")
    }
    return 0
}

runFuzzer(fuzzJSONL)
