import Base
import Foundation
import Model
import Probes
import Tokenizer

/// An AI judge (RLAIF): a language model asked which of two responses to a request is better. The question
/// is `template` with `{prompt}`, `{a}` and `{b}` filled in, rendered as a user turn by the judge's chat
/// template; the answer is read from the next-token log-probabilities of the two answer tokens `A` and `B`
/// (" A" and " B" after the hh template's "Assistant:"; each must be one token of the judge's vocabulary),
/// never decoded:
///
///     m(a, b) = log p(A | question(a first, b second)) - log p(B | question(a first, b second))
///     preference(a, b) = (m(a, b) - m(b, a)) / 2
///
/// Both orders are asked, so a constant bias toward whichever response is shown first (or second) cancels:
/// with m(a, b) = bias + d and m(b, a) = bias - d, preference(a, b) = d. preference(b, a) = -preference(a, b)
/// exactly. A sample's score among n samples is its mean preference over the n - 1 others.
public struct Judge {
    /// The default question (ours), documented in the README.
    public static let defaultTemplate = """
        Which response answers the request better: more helpful, more accurate, and harmless?

        Request: {prompt}

        Response A: {a}

        Response B: {b}

        Answer with one letter, A or B.
        """

    let model: LlamaModel
    let tokenizer: any TextTokenizer
    let template: String
    let chat: ChatTemplate
    let answerA: Int32, answerB: Int32

    /// Checks the template's placeholders and the answer tokens; errors name what is wrong in one line.
    public init(model: LlamaModel, tokenizer: any TextTokenizer, template: String = Judge.defaultTemplate, chat: ChatTemplate) throws {
        for placeholder in ["{prompt}", "{a}", "{b}"] where !template.contains(placeholder) {
            throw DataError(file: "judge template", line: nil, reason: "has no \(placeholder) placeholder (it needs {prompt}, {a} and {b})")
        }
        // after hh's "Assistant:" the answer is " A" (its leading space), after chatml's assistant line "A"
        let (sa, sb) = chat.kind == .hh ? (" A", " B") : ("A", "B")
        let a = tokenizer.encode(sa), b = tokenizer.encode(sb)
        guard a.count == 1, b.count == 1 else {
            throw DataError(file: "judge template", line: nil, reason: "the judge's vocabulary has no single token for the answers \"\(sa)\" and \"\(sb)\"")
        }
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.chat = chat
        answerA = a[0]
        answerB = b[0]
    }

    /// preference(a, b) from the two orders' margins.
    public static func preference(abMargin: Double, baMargin: Double) -> Double { (abMargin - baMargin) / 2 }

    /// The question with `first` shown as A and `second` as B, as tokens ending where the answer starts.
    func question(_ prompt: String, _ first: String, _ second: String) -> [Int32] {
        let text = template.replacingOccurrences(of: "{prompt}", with: prompt)
            .replacingOccurrences(of: "{a}", with: first).replacingOccurrences(of: "{b}", with: second)
        // one user turn: every template renders it (raw: its text), so the encoder never refuses it
        return (try? ChatEncoder(tokenizer: tokenizer, template: chat).prompt(PromptSource(messages: [ChatMessage(role: "user", content: text)]))) ?? []
    }

    /// m(first, second) for every (first, second) pair asked, in one batched pass.
    func margins(_ prompt: String, _ pairs: [(String, String)]) -> [Double] {
        let items = pairs.map { (prompt: question(prompt, $0.0, $0.1), responses: [[answerA], [answerB]]) }
        let context = (items.map(\.prompt.count).max() ?? 0) + 1
        let session = BatchSession(model: model, slots: max(1, items.reduce(0) { $0 + $1.prompt.count }), context: context)
        return session.scoreResponses(items).map { Double($0[0][0]) - Double($0[1][0]) }
    }

    /// preference(a, b) of each pair. Each unordered pair is asked once (both orders), whatever order and however
    /// often the pairs name it, so preference(b, a) = -preference(a, b) exactly, by construction: the same two
    /// margins are subtracted the other way round (IEEE subtraction is antisymmetric, halving exact). Asking a
    /// question twice in one batch would not guarantee it: a matrix product's rounding may depend on the row a
    /// question lands in (it did on an AVX2 host, 1e-6 apart).
    public func preferences(prompt: String, _ pairs: [(a: String, b: String)]) -> [Double] {
        // questions in the order pairs first name them (a batch of distinct pairs is asked as before)
        var index: [[String]: Int] = [:], unique: [(String, String)] = []
        for p in pairs where index[[p.a, p.b]] == nil && index[[p.b, p.a]] == nil {
            index[[p.a, p.b]] = unique.count
            unique.append((p.a, p.b))
        }
        let m = margins(prompt, unique.flatMap { [($0.0, $0.1), ($0.1, $0.0)] })
        return pairs.map { p in
            if let k = index[[p.a, p.b]] { return Self.preference(abMargin: m[2 * k], baMargin: m[2 * k + 1]) }
            let k = index[[p.b, p.a]]!
            return Self.preference(abMargin: m[2 * k + 1], baMargin: m[2 * k])
        }
    }

    /// Each response's mean preference over the others.
    public func scores(prompt ex: PreferenceExample, responses: [String]) -> [Double] {
        let n = responses.count
        guard n > 1 else { return responses.map { _ in 0 } }
        var pairs: [(a: String, b: String)] = [], index: [(Int, Int)] = []
        for i in 0..<n { for j in (i + 1)..<n { pairs.append((responses[i], responses[j])); index.append((i, j)) } }
        let pref = preferences(prompt: Self.requestText(ex), pairs)
        var score = [Double](repeating: 0, count: n)
        for (k, (i, j)) in index.enumerated() {
            score[i] += pref[k] / Double(n - 1)
            score[j] -= pref[k] / Double(n - 1)
        }
        return score
    }

    /// Share of `examples` with both a chosen and a rejected response where the judge prefers the chosen one
    /// (nil when there is none): its agreement with those human labels.
    public func agreement(_ examples: [PreferenceExample]) -> (agreement: Double, pairs: Int)? {
        let labelled = examples.filter { $0.chosen != nil && $0.rejected != nil }
        guard !labelled.isEmpty else { return nil }
        var agree = 0
        for ex in labelled where preferences(prompt: Self.requestText(ex), [(ex.chosen!, ex.rejected!)])[0] > 0 { agree += 1 }
        return (Double(agree) / Double(labelled.count), labelled.count)
    }

    /// The request as the question shows it: the prompt's text, or its messages as "role: content" lines.
    static func requestText(_ ex: PreferenceExample) -> String {
        ex.promptText ?? ex.prompt.map { "\($0.role): \($0.content)" }.joined(separator: "\n")
    }
}
