// libFuzzer target: the GGUF reader on arbitrary bytes. Built only with ALIGNSCOPE_FUZZ set
// (see Package.swift and `make fuzz`). Any input must give a GGUFFile or a thrown error, never a trap.
import Foundation
import FuzzDriver
@testable import GGUF

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let file = try? GGUFFile(bytes: bytes, name: "fuzz.gguf") else { return 0 }
    _ = try? file.llamaConfig()
    _ = try? file.tokenizer()
    for tensor in file.tensors.prefix(4) { _ = try? file.floats(tensor.name) }
    return 0
}

runFuzzer(fuzzGGUF)
