/// A small JSON5 scanner used only to say *where* a spec stops being valid JSON5: Foundation's
/// decoder reports no position on Linux. It accepts the JSON5 grammar (comments, unquoted keys,
/// single quotes, trailing commas, hex, leading/trailing dots, +/-Infinity, NaN) and returns the
/// first position where the text departs from it.
public enum JSON5Locator {
    public static func firstError(in text: String) -> (line: Int, column: Int, message: String)? {
        var s = Scanner(Array(text.unicodeScalars))
        do {
            s.skipSpace()
            try s.value()
            s.skipSpace()
            if !s.atEnd { throw s.fail("unexpected '\(s.peekText)' after the end of the document") }
            return nil
        } catch let e as LocatedError {
            return (e.line, e.column, e.message)
        } catch {
            return nil
        }
    }

    /// The first number outside strings and comments whose exponent has no digit ("5e-", "1E+ "),
    /// if any. Foundation's JSON5 decoder traps on such a number instead of throwing (found by
    /// FuzzSpec, swift-foundation on Linux), so `JSONValue.parseJSON5` rejects it before decoding.
    /// This is a lexical scan, not the validating `Scanner`, so that no earlier error in the text
    /// can hide the number: strings run to their closing quote (across lines, as Foundation reads
    /// them), comments are skipped, and words are read whole. Outside strings and comments such a
    /// number is never valid JSON5, so no valid spec is refused.
    public static func exponentWithoutDigits(in text: String) -> (line: Int, column: Int, message: String)? {
        let b = Array(text.utf8)
        func isDigit(_ x: UInt8) -> Bool { x >= 0x30 && x <= 0x39 }
        func isWord(_ x: UInt8) -> Bool {
            isDigit(x) || (x | 0x20 >= 0x61 && x | 0x20 <= 0x7A) || x == UInt8(ascii: "_") || x == UInt8(ascii: "$")
                || x == UInt8(ascii: ".") || x >= 0x80
        }
        var i = 0
        while i < b.count {
            let x = b[i]
            let next: UInt8? = i + 1 < b.count ? b[i + 1] : nil
            if x == UInt8(ascii: "\"") || x == UInt8(ascii: "'") {
                i += 1
                while i < b.count && b[i] != x { i += b[i] == UInt8(ascii: "\\") ? 2 : 1 }
                i += 1
            } else if x == UInt8(ascii: "/") && next == UInt8(ascii: "/") {
                while i < b.count && b[i] != UInt8(ascii: "\n") { i += 1 }
            } else if x == UInt8(ascii: "/") && next == UInt8(ascii: "*") {
                i += 2
                while i + 1 < b.count && !(b[i] == UInt8(ascii: "*") && b[i + 1] == UInt8(ascii: "/")) { i += 1 }
                i += 2
            } else if isWord(x) {
                let start = i
                while i < b.count && isWord(b[i]) { i += 1 }
                // A decimal mantissa ending in e/E, then a sign, then no digit.
                let word = b[start..<i]
                guard isDigit(x) || x == UInt8(ascii: "."), let last = word.last, last | 0x20 == UInt8(ascii: "e"),
                    word.dropLast().allSatisfy({ isDigit($0) || $0 == UInt8(ascii: ".") }), word.contains(where: isDigit),
                    i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-"),
                    i + 1 == b.count || !isDigit(b[i + 1])
                else { continue }
                return located(b, at: i + 1, "expected a digit in the exponent of a number, found \(describe(b, at: i + 1))")
            } else {
                i += 1
            }
        }
        return nil
    }

    /// Line and column (1-based, in characters) of byte offset `offset`.
    private static func located(_ b: [UInt8], at offset: Int, _ message: String) -> (line: Int, column: Int, message: String) {
        var line = 1, column = 1
        for x in b[..<min(offset, b.count)] {
            if x == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if x & 0xC0 != 0x80 {
                column += 1
            }
        }
        return (line, column, message)
    }

    /// The character at byte `offset` for an error message, on one line.
    private static func describe(_ b: [UInt8], at offset: Int) -> String {
        guard offset < b.count, let ch = String(decoding: b[offset..<min(b.count, offset + 4)], as: UTF8.self).unicodeScalars.first else {
            return "end of file"
        }
        if ch == "\n" || ch == "\r" { return "end of line" }
        if ch.properties.generalCategory == .control { return "U+" + String(ch.value, radix: 16, uppercase: true) }
        return "'\(ch)'"
    }

    struct LocatedError: Error { let line: Int; let column: Int; let message: String }

    struct Scanner {
        let c: [Unicode.Scalar]
        var i = 0
        /// Arrays and objects open at `i`. The scanner recurses, so the depth is bounded (a spec of
        /// thousands of '[' overflowed the stack; found by FuzzSpec); Foundation refuses deeper than 512 too.
        var depth = 0
        static let maxDepth = 512
        init(_ c: [Unicode.Scalar]) { self.c = c }

        var atEnd: Bool { i >= c.count }
        var peek: Unicode.Scalar? { i < c.count ? c[i] : nil }
        var peekText: String { peek.map { String($0) } ?? "end of file" }

        func fail(_ message: String) -> LocatedError {
            // whatever was expected, the reason is the comment that runs to the end (skipSpace stopped at it)
            let message = unterminatedComment ? "a comment /* is never closed with */" : message
            var line = 1, col = 1
            for k in 0..<min(i, c.count) {
                if c[k] == "\n" { line += 1; col = 1 } else { col += 1 }
            }
            return LocatedError(line: line, column: col, message: message)
        }

        mutating func skipSpace() {
            while let ch = peek {
                if ch.properties.isWhitespace || ch == "\u{FEFF}" {
                    i += 1
                } else if ch == "/", i + 1 < c.count, c[i + 1] == "/" {
                    while let x = peek, x != "\n" { i += 1 }
                } else if ch == "/", i + 1 < c.count, c[i + 1] == "*" {
                    let start = i
                    i += 2
                    while i + 1 < c.count, !(c[i] == "*" && c[i + 1] == "/") { i += 1 }
                    if i + 1 >= c.count {
                        i = start
                        unterminatedComment = true
                        return
                    }
                    i += 2
                } else {
                    return
                }
            }
        }

        /// Set by `skipSpace` at a "/*" that has no "*/" (it stops there).
        var unterminatedComment = false

        mutating func value() throws {
            guard let ch = peek else { throw fail("expected a value, found end of file") }
            switch ch {
            case "{": try object()
            case "[": try array()
            case "\"", "'": try string()
            default:
                if ch == "-" || ch == "+" || ch == "." || ch.properties.numericType != nil {
                    try number()
                } else {
                    let start = i
                    let word = identifier()
                    if ["Infinity", "NaN"].contains(word) {
                        i = start
                        throw fail("\(word) is not a number a spec takes (values must be finite)")
                    }
                    if !["true", "false", "null"].contains(word) {
                        i = start
                        throw fail(word.isEmpty ? "unexpected '\(peekText)'" : "unexpected word '\(word)' (strings need quotes)")
                    }
                }
            }
        }

        mutating func identifier() -> String {
            var out = ""
            while let ch = peek, ch.properties.isAlphabetic || ch == "_" || ch == "$" || ch.properties.numericType != nil {
                out.unicodeScalars.append(ch)
                i += 1
            }
            return out
        }

        /// JSON5 numbers: [sign] (Infinity | NaN | 0x hex | digits [. digits] | . digits) [e [sign] digits].
        mutating func number() throws {
            let signStart = i
            if peek == "-" || peek == "+" { i += 1 }
            if peek == "I" || peek == "N" {
                let word = identifier()
                if word == "Infinity" || word == "NaN" {
                    i = signStart
                    throw fail("\(word) is not a number a spec takes (values must be finite)")
                }
                return  // the decoder names another word
            }
            if peek == "0" && i + 1 < c.count && (c[i + 1] == "x" || c[i + 1] == "X") {
                _ = identifier()  // hex digits: the decoder checks the word
                return
            }
            let start = i
            var mantissa = digits()
            if peek == "." {
                i += 1
                mantissa += digits()
            }
            if mantissa == 0 { throw fail("expected a number") }
            if peek == "e" || peek == "E" {
                i += 1
                if peek == "-" || peek == "+" { i += 1 }
                if digits() == 0 { throw fail("expected a digit in the exponent of a number, found '\(peekText)'") }
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: c[start..<i])
            if let x = Double(text), !x.isFinite {
                let end = i
                i = start
                defer { i = end }
                throw fail("number \(text) is out of range (larger than about 1.8e308)")
            }
            // Foundation refuses a number that underflows to 0 (Python's json reads it as 0.0): say so, and where
            let mantissaText = text.split(whereSeparator: { $0 == "e" || $0 == "E" }).first ?? ""
            if let x = Double(text), x == 0, mantissaText.contains(where: { ("1"..."9").contains($0) }) {
                let end = i
                i = start
                defer { i = end }
                throw fail("number \(text) is too small to be told from 0 (below about 5e-324); write 0")
            }
        }

        mutating func digits() -> Int {
            let start = i
            while let ch = peek, ("0"..."9").contains(ch) { i += 1 }
            return i - start
        }

        /// Skips a quoted string and returns its raw content (escapes as written).
        @discardableResult
        mutating func string() throws -> String {
            let quote = c[i]
            i += 1
            var raw = ""
            while let ch = peek {
                if ch == "\n" { throw fail("unterminated string") }
                if ch.value < 0x20 {
                    throw fail("control character U+\(String(ch.value, radix: 16, uppercase: true).leftPadded(4)) inside a string (write it escaped, e.g. \\n or \\t)")
                }
                i += 1
                if ch == "\\" {
                    raw.unicodeScalars.append(ch)
                    if let next = peek { raw.unicodeScalars.append(next) }
                    i += 1
                    continue
                }
                if ch == quote { return raw }
                raw.unicodeScalars.append(ch)
            }
            throw fail("unterminated string")
        }

        mutating func object() throws {
            depth += 1
            defer { depth -= 1 }
            if depth > Self.maxDepth { throw fail("more than \(Self.maxDepth) nested arrays or objects") }
            i += 1
            skipSpace()
            var keys = Set<String>()
            while true {
                if peek == "}" { i += 1; return }
                let keyStart = i
                let key: String
                if peek == "\"" || peek == "'" {
                    key = try string()
                } else {
                    key = identifier()
                    if key.isEmpty { throw fail("expected a key or '}', found '\(peekText)'") }
                }
                // compared as decoded: "a" and "\u0061" are the same key
                if !keys.insert(Self.decodedKey(key)).inserted {
                    i = keyStart
                    throw fail("duplicate key \"\(key)\" in this object (each key may appear once)")
                }
                skipSpace()
                guard peek == ":" else { throw fail("expected ':' after a key, found '\(peekText)'") }
                i += 1
                skipSpace()
                try value()
                skipSpace()
                if peek == "," { i += 1; skipSpace(); continue }
                if peek == "}" { i += 1; return }
                throw fail("expected ',' or '}', found '\(peekText)'")
            }
        }

        /// A key's raw text (escapes as written) decoded: \uXXXX (surrogate pairs too) and the one-letter escapes.
        static func decodedKey(_ raw: String) -> String {
            guard raw.contains("\\") else { return raw }
            let s = Array(raw.unicodeScalars)
            var out = String.UnicodeScalarView()
            var k = 0
            func hex4(_ at: Int) -> UInt32? {
                guard at + 4 <= s.count else { return nil }
                return UInt32(String(String.UnicodeScalarView(s[at..<at + 4])), radix: 16)
            }
            while k < s.count {
                guard s[k] == "\\", k + 1 < s.count else { out.append(s[k]); k += 1; continue }
                let e = s[k + 1]
                switch e {
                case "u":
                    if var v = hex4(k + 2) {
                        k += 6
                        if (0xD800..<0xDC00).contains(v), k + 1 < s.count, s[k] == "\\", s[k + 1] == "u", let low = hex4(k + 2), (0xDC00..<0xE000).contains(low) {
                            v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                            k += 6
                        }
                        out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                        continue
                    }
                    out.append(e)
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                default: out.append(e)
                }
                k += 2
            }
            return String(out)
        }

        mutating func array() throws {
            depth += 1
            defer { depth -= 1 }
            if depth > Self.maxDepth { throw fail("more than \(Self.maxDepth) nested arrays or objects") }
            i += 1
            skipSpace()
            while true {
                if peek == "]" { i += 1; return }
                try value()
                skipSpace()
                if peek == "," { i += 1; skipSpace(); continue }
                if peek == "]" { i += 1; return }
                throw fail("expected ',' or ']', found '\(peekText)'")
            }
        }
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
