/// A small JSON5 scanner used only to say *where* a spec stops being valid JSON5: Foundation's
/// decoder reports no position on Linux. It accepts the JSON5 grammar (comments, unquoted keys,
/// single quotes, trailing commas, hex, leading/trailing dots, +/-Infinity, NaN) and returns the
/// first position where the text departs from it.
enum JSON5Locator {
    static func firstError(in text: String) -> (line: Int, column: Int, message: String)? {
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

    /// The first number whose exponent has no digit ("5e-", "1E+ "), if the text has one before any
    /// other error. Foundation's JSON5 decoder traps on such a number instead of throwing (found by
    /// FuzzSpec, swift-foundation on Linux), so `JSONValue.parseJSON5` rejects it before decoding.
    static func exponentWithoutDigits(in text: String) -> (line: Int, column: Int, message: String)? {
        var s = Scanner(Array(text.unicodeScalars))
        do {
            s.skipSpace()
            try s.value()
            return nil
        } catch let e as LocatedError where e.inExponent {
            return (e.line, e.column, e.message)
        } catch {
            return nil
        }
    }

    struct LocatedError: Error { let line: Int; let column: Int; let message: String; var inExponent = false }

    struct Scanner {
        let c: [Unicode.Scalar]
        var i = 0
        init(_ c: [Unicode.Scalar]) { self.c = c }

        var atEnd: Bool { i >= c.count }
        var peek: Unicode.Scalar? { i < c.count ? c[i] : nil }
        var peekText: String { peek.map { String($0) } ?? "end of file" }

        func fail(_ message: String) -> LocatedError {
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
                    i += 2
                    while i + 1 < c.count, !(c[i] == "*" && c[i + 1] == "/") { i += 1 }
                    i = min(i + 2, c.count)
                } else {
                    return
                }
            }
        }

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
                    if !["true", "false", "null", "Infinity", "NaN"].contains(word) {
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
            if peek == "-" || peek == "+" { i += 1 }
            if peek == "I" || peek == "N" || (peek == "0" && i + 1 < c.count && (c[i + 1] == "x" || c[i + 1] == "X")) {
                _ = identifier()  // Infinity, NaN, hex digits: the decoder checks the word
                return
            }
            var mantissa = digits()
            if peek == "." {
                i += 1
                mantissa += digits()
            }
            if mantissa == 0 { throw fail("expected a number") }
            if peek == "e" || peek == "E" {
                i += 1
                if peek == "-" || peek == "+" { i += 1 }
                if digits() == 0 {
                    var e = fail("expected a digit in the exponent of a number, found '\(peekText)'")
                    e.inExponent = true
                    throw e
                }
            }
        }

        mutating func digits() -> Int {
            let start = i
            while let ch = peek, ("0"..."9").contains(ch) { i += 1 }
            return i - start
        }

        mutating func string() throws {
            let quote = c[i]
            i += 1
            while let ch = peek {
                i += 1
                if ch == "\\" { i += 1; continue }
                if ch == quote { return }
                if ch == "\n" { throw fail("unterminated string") }
            }
            throw fail("unterminated string")
        }

        mutating func object() throws {
            i += 1
            skipSpace()
            while true {
                if peek == "}" { i += 1; return }
                if peek == "\"" || peek == "'" {
                    try string()
                } else if identifier().isEmpty {
                    throw fail("expected a key or '}', found '\(peekText)'")
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

        mutating func array() throws {
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
