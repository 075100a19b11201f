// libFuzzer target: the JSONL example loader (prompt/chosen/rejected, messages, HH transcripts) on
import Foundation
// arbitrary text. Built only with ALIGNSCOPE_FUZZ set. Any input must give examples or a thrown error.
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

// SwiftPM links this file's top-level code as main(), so main hands control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt
var fuzzArgc = CommandLine.argc
var fuzzArgv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&fuzzArgc, &fuzzArgv, fuzzJSONL))
