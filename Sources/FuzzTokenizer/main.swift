// libFuzzer target: the byte-level BPE tokenizer with the real SmolLM2 vocabulary (from
// ALIGNSCOPE_MODEL or models/SmolLM2-135M-Instruct.Q4_1.gguf). Built only with ALIGNSCOPE_FUZZ set.
// Checks the round trip: decode(encode(text)) == text for every valid UTF-8 input.
import Foundation
import GGUF
import Tokenizer

let modelPath = ProcessInfo.processInfo.environment["ALIGNSCOPE_MODEL"] ?? "models/SmolLM2-135M-Instruct.Q4_1.gguf"
nonisolated(unsafe) let fuzzTokenizer: BPETokenizer = {
    do { return try GGUFFile(path: modelPath).tokenizer() } catch { fatalError("FuzzTokenizer: cannot load the vocabulary: \(error)") }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let buffer = UnsafeBufferPointer(start: data, count: size)
    guard let text = String(validating: buffer, as: UTF8.self) else {
        _ = fuzzTokenizer.encode(String(decoding: buffer, as: UTF8.self))
        return 0
    }
    let ids = fuzzTokenizer.encode(text)
    precondition(ids.allSatisfy { $0 >= 0 && Int($0) < fuzzTokenizer.vocabSize }, "id out of range for \(Array(buffer))")
    let back = fuzzTokenizer.decode(ids)
    precondition(back == text, "round trip failed for \(Array(buffer)): \(ids) -> \(back.debugDescription)")
    return 0
}

// SwiftPM links this file's top-level code as main(), so main hands control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt
var fuzzArgc = CommandLine.argc
var fuzzArgv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&fuzzArgc, &fuzzArgv, fuzzTokenizer))
