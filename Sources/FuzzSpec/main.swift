// libFuzzer target: the experiment spec decoder (JSON5 + validation + sweep expansion) on arbitrary
// text. Built only with ALIGNSCOPE_FUZZ set. Any input must give an Experiment or a thrown error.
import Experiments
import FuzzDriver
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? Experiment.parse(text: text, file: "fuzz.json5", baseDirectory: URL(fileURLWithPath: "/nonexistent"))
    return 0
}

runFuzzer(fuzzSpec)
