import Base
import Foundation

// A generator command for the tests of the external-command interface (ProbesTests.GenerationTests):
// answers each JSON request line with its filled template upper-cased and " #<seed>", in reverse order
// (any order is allowed). Usage: alignscope-test-generator COUNTER_FILE [--fail | --garbage | --drop-last].
// Each run appends one line to COUNTER_FILE, so a test can see whether the command ran.
let args = CommandLine.arguments
guard args.count >= 2 else {
    FileHandle.standardError.write(Data("usage: alignscope-test-generator COUNTER_FILE [--fail|--garbage|--drop-last]\n".utf8))
    exit(2)
}
let mode = args.count > 2 ? args[2] : ""
if let f = fopen(args[1], "a") {
    fputs("run\n", f)
    fclose(f)
}
let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
if mode == "--fail" {
    FileHandle.standardError.write(Data("something went wrong\nmodel not available\n".utf8))
    exit(3)
}
var answers: [String] = []
for (_, line) in TextFile.lines(input) where !line.allSatisfy(\.isWhitespace) {
    guard case .object(let r) = try JSONValue.parse(line), case .number(let id)? = r["id"], case .string(let text)? = r["text"],
          case .string(let template)? = r["template"], case .number(let seed)? = r["seed"],
          case .array(let prompt)? = r["prompt"], case .object(let last)? = prompt.last, case .string(let content)? = last["content"]
    else { exit(4) }
    let source = text.isEmpty ? content : text
    let answer = template.replacingOccurrences(of: "{text}", with: source).uppercased() + " #" + JSONValue.format(seed)
    answers.append("{\"id\": \(JSONValue.format(id)), \"text\": \(jsonQuoted(answer))}")
}
if mode == "--garbage" { answers.insert("this is not json", at: 1) }
if mode == "--drop-last" { answers.removeLast() }
for a in answers.reversed() { print(a) }
