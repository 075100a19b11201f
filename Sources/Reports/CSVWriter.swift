import Foundation

/// RFC 4180 CSV: a header row, then records; fields are separated by commas and quoted with `"`
/// when they contain a comma, a quote, CR or LF, or start or end with a space (quotes inside are
/// doubled). Records end with LF (RFC 4180 says CRLF; pandas, R's `read.csv`, Python's `csv`
/// and `sqlite3 .import` all accept LF, and LF keeps the files diff-friendly). UTF-8, no BOM.
/// Missing values are empty fields (NaN in pandas, NA in R).
public struct CSVWriter: Sendable {
    public private(set) var header: [String]
    private var text: String

    public init(header: [String]) {
        precondition(!header.isEmpty, "a CSV needs at least one column")
        self.header = header
        text = ""
        appendRecord(header)
    }

    /// Appends one record; it must have as many fields as the header.
    public mutating func append(_ fields: [String]) {
        precondition(fields.count == header.count, "CSV record has \(fields.count) fields, header has \(header.count)")
        appendRecord(fields)
    }

    /// The whole file.
    public var contents: String { text }

    private mutating func appendRecord(_ fields: [String]) {
        text += fields.map(Self.field).joined(separator: ",")
        text += "\n"
    }

    /// One field, quoted when needed.
    public static func field(_ value: String) -> String {
        let needsQuotes = value.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
            || value.hasPrefix(" ") || value.hasSuffix(" ")
        guard needsQuotes else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
