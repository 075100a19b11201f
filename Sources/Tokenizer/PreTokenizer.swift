/// How text is cut into words before byte-level BPE merges them; named by `tokenizer.ggml.pre`.
///
/// The GPT-2 pattern (from OpenAI's GPT-2 `encoder.py`, also llama.cpp's `gpt2` pre-tokenizer):
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// `smollm` (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_SMOLLM`; SmolLM2's tokenizer.json is
/// `Digits(individual_digits: true)` then `ByteLevel`): every `\p{N}` code point is first split
/// off on its own, then the GPT-2 pattern runs on each stretch between digits, so the lookahead
/// `(?!\S)` sees the end of the stretch as the end of the text.
///
/// `qwen2` (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2`; Qwen2's tokenizer.json is a `Split` with this
/// pattern, then `ByteLevel` without its own regex):
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// `gpt-2` (llama.cpp's name for it) and `olmo` (the GPT-NeoX tokenizer's, Pythia's) are the GPT-2 pattern too.
/// `default` is read as the GPT-2 pattern (what a byte-level `tokenizer.json` without a custom
/// pre-tokenizer does); note that llama.cpp's own fallback for `default` adds punctuation and
/// 3-digit splits. The pattern is matched by hand over Unicode scalars: `\p{L}` is general category
/// L*, `\p{N}` is N*, `\s` is the White_Space property (Oniguruma's `\s`: U+0009-000D, U+0085, Zs,
/// Zl, Zp).
enum PreTokenizer: String, Sendable, CaseIterable {
    case smollm
    case gpt2
    case qwen2

    /// The pre-tokenizer named by `tokenizer.ggml.pre`; unknown names throw naming the value.
    init(name: String) throws {
        switch name {
        case "smollm": self = .smollm
        case "gpt2", "gpt-2", "olmo", "default": self = .gpt2
        case "qwen2": self = .qwen2
        default: throw TokenizerError.unknownPreTokenizer(name: name)
        }
    }

    /// Appends to `words` the byte ranges of the words of `text`, which must be valid UTF-8.
    /// The ranges are in order and cover `text` exactly.
    func split(_ text: UnsafeBufferPointer<UInt8>, into words: inout [Range<Int>]) {
        let scalars = ScalarTable(text)
        let n = scalars.count
        switch self {
        case .gpt2:
            scalars.gpt2(0, n, into: &words)
        case .smollm:
            var start = 0
            for i in 0..<n where scalars.classes[i] == .number {
                if start < i { scalars.gpt2(start, i, into: &words) }
                words.append(scalars.bytes(i, i + 1))
                start = i + 1
            }
            if start < n { scalars.gpt2(start, n, into: &words) }
        case .qwen2:
            scalars.qwen2(0, n, into: &words)
        }
    }

    /// The words of `text` as strings (for tests and diagnostics).
    func words(_ text: String) -> [String] {
        let utf8 = Array(text.utf8)
        var ranges: [Range<Int>] = []
        utf8.withUnsafeBufferPointer { split($0, into: &ranges) }
        return ranges.map { String(decoding: utf8[$0], as: UTF8.self) }
    }
}

/// The character classes the GPT-2 pattern distinguishes.
enum CharClass: UInt8 {
    case letter       // \p{L}
    case number       // \p{N}
    case space        // U+0020, the optional prefix of words
    case whitespace   // any other \s
    case apostrophe   // ', which starts contractions; otherwise a symbol
    case symbol       // [^\s\p{L}\p{N}]

    var isSpace: Bool { self == .space || self == .whitespace }
    var isSymbol: Bool { self == .symbol || self == .apostrophe }

    private static let ascii: [CharClass] = (0..<128).map { v in
        switch UInt8(v) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): .number
        case 0x20: .space
        case 0x09...0x0D: .whitespace
        case UInt8(ascii: "'"): .apostrophe
        default: .symbol
        }
    }

    init(_ v: UInt32) {
        if v < 128 {
            self = Self.ascii[Int(v)]
            return
        }
        let p = Unicode.Scalar(v)!.properties
        if p.isWhitespace {
            self = .whitespace
            return
        }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = .symbol
        }
    }
}

/// The scalars of a UTF-8 buffer: their classes and byte offsets.
private struct ScalarTable {
    let text: UnsafeBufferPointer<UInt8>
    /// offsets[i] is the first byte of scalar i; offsets[count] == text.count.
    var offsets: [Int] = []
    var classes: [CharClass] = []
    var count: Int { classes.count }

    init(_ text: UnsafeBufferPointer<UInt8>) {
        self.text = text
        offsets.reserveCapacity(text.count + 1)
        classes.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            let b0 = UInt32(text[i])
            let len: Int
            var v: UInt32
            if b0 < 0x80 {
                len = 1; v = b0
            } else if b0 < 0xE0 {
                len = 2; v = b0 & 0x1F
            } else if b0 < 0xF0 {
                len = 3; v = b0 & 0x0F
            } else {
                len = 4; v = b0 & 0x07
            }
            precondition(i + len <= text.count, "PreTokenizer needs valid UTF-8")
            for k in 1..<len { v = (v << 6) | (UInt32(text[i + k]) & 0x3F) }
            offsets.append(i)
            classes.append(CharClass(v))
            i += len
        }
        offsets.append(text.count)
    }

    func bytes(_ from: Int, _ to: Int) -> Range<Int> { offsets[from]..<offsets[to] }

    /// The ASCII byte of scalar i, or 0 if it is not ASCII.
    private func ascii(_ i: Int) -> UInt8 {
        offsets[i + 1] - offsets[i] == 1 ? text[offsets[i]] : 0
    }

    /// Length of the contraction ('s 't 're 've 'm 'll 'd; with `caseless` also 'S 'RE ...) starting at
    /// scalar i, or 0.
    func contraction(at i: Int, end: Int, caseless: Bool = false) -> Int {
        guard classes[i] == .apostrophe, i + 1 < end else { return 0 }
        func lower(_ b: UInt8) -> UInt8 { caseless && (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b) ? b + 32 : b }
        func ascii(_ k: Int) -> UInt8 { lower(self.ascii(k)) }
        switch ascii(i + 1) {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
            return 2
        case UInt8(ascii: "r"), UInt8(ascii: "v"):
            return i + 2 < end && ascii(i + 2) == UInt8(ascii: "e") ? 3 : 0
        case UInt8(ascii: "l"):
            return i + 2 < end && ascii(i + 2) == UInt8(ascii: "l") ? 3 : 0
        default:
            return 0
        }
    }

    /// Whether scalar i is CR or LF.
    private func isNewline(_ i: Int) -> Bool {
        let b = ascii(i)
        return b == 0x0A || b == 0x0D
    }

    /// The Qwen2 pattern over scalars lo..<hi; at each position the first alternative that matches wins.
    func qwen2(_ lo: Int, _ hi: Int, into words: inout [Range<Int>]) {
        var i = lo
        while i < hi {
            var end = i + contraction(at: i, end: hi, caseless: true)
            if end == i {
                end = qwen2Match(i, hi)
            }
            words.append(bytes(i, end))
            i = end
        }
    }

    /// The end of the Qwen2 alternative (after the contractions) that matches at scalar i (always one does).
    private func qwen2Match(_ i: Int, _ hi: Int) -> Int {
        let c = classes[i]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        var j = i
        if c != .letter && c != .number && !isNewline(i) && i + 1 < hi && classes[i + 1] == .letter { j = i + 1 }
        if classes[j] == .letter {
            var end = j + 1
            while end < hi && classes[end] == .letter { end += 1 }
            return end
        }
        // \p{N}
        if c == .number { return i + 1 }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        j = (c == .space && i + 1 < hi && classes[i + 1].isSymbol) ? i + 1 : i
        if classes[j].isSymbol {
            var end = j + 1
            while end < hi && classes[end].isSymbol { end += 1 }
            while end < hi && isNewline(end) { end += 1 }
            return end
        }
        // whitespace: \s*[\r\n]+ (up to the run's last CR/LF), else \s+(?!\S), else \s+
        var run = i
        while run < hi && classes[run].isSpace { run += 1 }
        if let last = (i..<run).last(where: isNewline) { return last + 1 }
        if run < hi && run - i > 1 { return run - 1 }
        return run
    }

    /// The GPT-2 pattern over scalars lo..<hi; at each position the first alternative that matches wins.
    func gpt2(_ lo: Int, _ hi: Int, into words: inout [Range<Int>]) {
        var i = lo
        while i < hi {
            var end = i + contraction(at: i, end: hi)
            if end == i {
                // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: one optional U+0020, then a run.
                var j = i
                if classes[i] == .space, i + 1 < hi, !classes[i + 1].isSpace { j = i + 1 }
                let c = classes[j]
                end = j + 1
                switch c {
                case .letter:
                    while end < hi && classes[end] == .letter { end += 1 }
                case .number:
                    while end < hi && classes[end] == .number { end += 1 }
                case .symbol, .apostrophe:
                    while end < hi && classes[end].isSymbol { end += 1 }
                case .space, .whitespace:
                    // `\s+(?!\S)`: the run, less its last character when a non-space follows;
                    // a single space before a non-space falls through to `\s+`.
                    while end < hi && classes[end].isSpace { end += 1 }
                    if end < hi && end - i > 1 { end -= 1 }
                }
            }
            words.append(bytes(i, end))
            i = end
        }
    }
}
