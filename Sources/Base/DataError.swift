/// A line of a data file (training, probes, labels, a judge question) that cannot be used, with the file and line: one line, as the
/// commands print it ("file:line: reason").
public struct DataError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let reason: String

    public init(file: String, line: Int?, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)" }
}
