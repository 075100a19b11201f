// libFuzzer target: the GGUF reader on arbitrary bytes. Built only with ALIGNSCOPE_FUZZ set
import Foundation
// (see Package.swift and `make fuzz`). Any input must give a GGUFFile or a thrown error, never a trap.
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

// SwiftPM links this file's top-level code as main(), so main hands control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt
var fuzzArgc = CommandLine.argc
var fuzzArgv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&fuzzArgc, &fuzzArgv, fuzzGGUF))
