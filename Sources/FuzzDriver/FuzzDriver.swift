// The libFuzzer entry shared by the fuzz targets (issue 9). Built only with ALIGNSCOPE_FUZZ set.
import Foundation

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// Hands this process's arguments to libFuzzer's driver, which calls `target` on every input, and exits
/// with its status. A fuzz target's main.swift calls it from its top-level code (SwiftPM links that code
/// as main()).
public func runFuzzer(_ target: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}
