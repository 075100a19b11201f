import Experiments
import Foundation
import Kernels

Products.preparePassiveOpenMP()

// The executable is thin: it parses arguments and calls the modules. Errors become one line on
// stderr: exit code 2 for bad input, 1 for a failed run.
let arguments = Array(CommandLine.arguments.dropFirst())

func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
    exit(code)
}

guard let verbName = arguments.first, verbName != "--help", verbName != "-h", verbName != "help" else {
    print(Verbs.overview, terminator: "")
    exit(arguments.isEmpty ? 2 : 0)
}
if verbName == "--version" || verbName == "version" {
    print(Commands.versionText)
    exit(0)
}
guard let verb = Verbs.all.first(where: { $0.name == verbName }) else {
    fail("unknown verb \"\(verbName)\" (verbs: \(Verbs.all.map { $0.name }.joined(separator: ", ")); see alignscope --help)", code: 2)
}
let rest = Array(arguments.dropFirst())
if rest.contains("--help") || rest.contains("-h") {
    print(verb.help, terminator: "")
    exit(0)
}

do {
    // Parsing fills the verb's struct and validates it.
    exit(try verb.parse(rest).run())
} catch let error as CommandFailure {
    fail(error.description, code: 1)
} catch {
    fail("\(error)", code: 2)
}
