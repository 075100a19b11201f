// swift-tools-version:6.0
import PackageDescription

// AlignScope: no SwiftPM package dependencies. oneDNN, OpenBLAS and SQLite come in as system libraries.
let package = Package(
    name: "AlignScope",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "alignscope", targets: ["alignscope"]),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        // oneDNN's C API (Debian libdnnl-dev has no pkg-config file) and the OpenMP runtime it is built with.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        // Starting child processes that die with their parent (generators, `run --jobs` workers).
        .target(name: "CProcess"),
        // Foundation of our own: JSON values, SHA-256, seeded RNG and shuffles, little-endian bytes, thread
        // splitting, text files, child processes. Every other module may import it; it imports no other.
        .target(name: "Base", dependencies: ["CProcess"]),
        // C kernels that use instructions chosen at run time (bf16 rounding with AVX-512).
        .target(name: "CKernels"),
        .target(name: "Kernels", dependencies: ["Base", "CBLAS", "CDNNL", "CKernels"]),
        .target(name: "Model", dependencies: ["Base", "Kernels"]),
        .target(name: "Tokenizer"),
        .target(name: "GGUF", dependencies: ["Base", "Model", "Tokenizer"]),
        .target(name: "HFModels", dependencies: ["Base", "Model", "Tokenizer"]),
        .target(name: "Training", dependencies: ["Base", "Model", "Kernels", "Tokenizer", "Probes"]),
        .target(name: "Probes", dependencies: ["Base", "Model", "Tokenizer"]),
        .target(name: "RunStore", dependencies: ["Base", "CSQLite"]),
        .target(name: "Experiments", dependencies: ["Base", "Kernels", "Model", "GGUF", "HFModels", "Tokenizer", "Training", "Probes", "RunStore"]),
        .target(name: "Reports", dependencies: ["Base", "RunStore"]),
        .target(name: "Benchmarks", dependencies: ["Base", "Model", "Kernels", "Training", "GGUF", "HFModels", "RunStore"]),
        .executableTarget(name: "alignscope", dependencies: ["Base", "Kernels", "Experiments", "Reports", "Benchmarks", "GGUF", "HFModels", "Model", "Tokenizer", "Probes", "RunStore"]),
        // A generator command for the tests of the external-command interface (no Python in tests).
        .executableTarget(name: "alignscope-test-generator", dependencies: ["Base"]),
        .testTarget(name: "BaseTests", dependencies: ["Base"]),
        .testTarget(name: "KernelsTests", dependencies: ["Base", "Kernels"]),
        .testTarget(name: "ModelTests", dependencies: ["Base", "Model", "Kernels"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Base", "Tokenizer", "GGUF", "Model"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GGUFTests", dependencies: ["Base", "GGUF", "Model", "Tokenizer"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HFModelsTests", dependencies: ["Base", "HFModels", "GGUF", "Model", "Tokenizer"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TrainingTests", dependencies: ["Base", "Training", "Model", "Kernels"]),
        .testTarget(name: "ProbesTests", dependencies: ["Base", "Probes", "Model", "Tokenizer", "Training"], resources: [.copy("Fixtures")]),
        .testTarget(name: "RunStoreTests", dependencies: ["Base", "RunStore"]),
        .testTarget(name: "ExperimentsTests", dependencies: ["Base", "Experiments", "RunStore", "Model", "GGUF", "HFModels", "Probes", "Training", "Tokenizer"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ReportsTests", dependencies: ["Base", "Reports", "RunStore"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Base", "Benchmarks", "Kernels"]),
    ]
)

// Fuzzing (issue 9): libFuzzer targets, added only when ALIGNSCOPE_FUZZ is set, so that normal builds
// and `make test` never see them. Build: ALIGNSCOPE_FUZZ=1 swift build -Xswiftc -sanitize=fuzzer --product FuzzGGUF
if Context.environment["ALIGNSCOPE_FUZZ"] != nil {
    package.targets += [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "FuzzGGUF", dependencies: ["GGUF", "FuzzDriver"]),
        .executableTarget(name: "FuzzSpec", dependencies: ["Experiments", "FuzzDriver"]),
        .executableTarget(name: "FuzzJSONL", dependencies: ["Probes", "FuzzDriver"]),
        .executableTarget(name: "FuzzTokenizer", dependencies: ["GGUF", "Tokenizer", "FuzzDriver"]),
    ]
    package.products += ["FuzzGGUF", "FuzzSpec", "FuzzJSONL", "FuzzTokenizer"].map { .executable(name: $0, targets: [$0]) }
}
