import Model
import XCTest
@testable import Training

final class HindsightTests: XCTestCase {
    func testDefaultTemplateBuildsTheExactSequence() {
        let t = HindsightTemplate()
        let prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        let pieces = t.pieces(prompt: prompt, chosen: "Hello!<|im_end|>", rejected: "Go away.<|im_end|>")
        XCTAssertEqual(pieces, [
            TextPiece(prompt, trained: false), TextPiece("A helpful answer: ", trained: false),
            TextPiece("Hello!<|im_end|>", trained: true), TextPiece(" An unhelpful answer: ", trained: false),
            TextPiece("Go away.<|im_end|>", trained: true),
        ])
        XCTAssertEqual(pieces.map(\.text).joined(),
                       "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                       + "A helpful answer: Hello!<|im_end|> An unhelpful answer: Go away.<|im_end|>")
        XCTAssertEqual(t.evaluationPrefix(prompt: prompt), prompt + "A helpful answer: ")
    }

    func testCustomTemplate() {
        let t = HindsightTemplate(helpful: "Good: ", unhelpful: "\nBad: ")
        let text = t.pieces(prompt: "Q: hi\nA: ", chosen: "yo", rejected: "no").map(\.text).joined()
        XCTAssertEqual(text, "Q: hi\nA: Good: yo\nBad: no")
        XCTAssertEqual(t.evaluationPrefix(prompt: "Q: hi\nA: "), "Q: hi\nA: Good: ")
        XCTAssertNotEqual(t, HindsightTemplate())
    }

    /// Byte tokens: the loss covers exactly the tokens of both answers.
    func testPackTrainsOnBothAnswersOnly() {
        let t = HindsightTemplate(helpful: "+", unhelpful: "-")
        let (batch, weights, spans) = t.pack([(prompt: "Q:", chosen: "ab", rejected: "c"), (prompt: "R", chosen: "d", rejected: "e")],
                                              bos: 256) { Array($0.utf8).map(Int32.init) }
        // Sequence 0: BOS Q : + a b - c  ->  targets where the next token is a, b or c.
        // Sequence 1: BOS R + d - e.
        XCTAssertEqual(batch.tokens, [256, 81, 58, 43, 97, 98, 45, 99, 256, 82, 43, 100, 45, 101])
        XCTAssertEqual(batch.targets, [-1, -1, -1, 97, 98, -1, 99, -1, -1, -1, 100, -1, 101, -1])
        XCTAssertEqual(weights, [0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0])
        XCTAssertEqual(batch.sequenceStarts, [0, 8])
        XCTAssertEqual(spans, [SequenceSpan(start: 0, count: 8), SequenceSpan(start: 8, count: 6)])
        let noBOS = t.pack([(prompt: "Q:", chosen: "ab", rejected: "c")], bos: nil) { Array($0.utf8).map(Int32.init) }
        XCTAssertEqual(noBOS.batch.tokens, [81, 58, 43, 97, 98, 45, 99])
        XCTAssertEqual(noBOS.batch.targets, [-1, -1, 97, 98, -1, 99, -1])
    }

    func testPackPiecesSkipsEmptyPieces() {
        let (batch, weights, _) = TokenBatch.pack([[(ids: [1], trained: false), (ids: [], trained: true), (ids: [2, 3], trained: true)]])
        XCTAssertEqual(batch.targets, [2, 3, -1])
        XCTAssertEqual(weights, [1, 1, 0])
    }

    /// CoH trains with the SFT loss: same value and gradient, no reference needed.
    func testCoHObjectiveIsTheSFTLoss() {
        let lp: [Float] = [-1, -2, -3, 0], w: [Float] = [1, 0, 2, 0]
        func run(_ o: Objective) -> (Double, [Float]) {
            var d = [Float](repeating: 9, count: 4)
            let r = lp.withUnsafeBufferPointer { lpb in
                w.withUnsafeBufferPointer { wb in
                    d.withUnsafeMutableBufferPointer {
                        o.evaluate(logprobs: lpb, weights: wb, spans: [SequenceSpan(start: 0, count: 4)], dLogprobs: $0)
                    }
                }
            }
            return (r.loss, d)
        }
        let coh = run(.coh(template: HindsightTemplate()))
        XCTAssertEqual(coh.0, 7.0 / 3.0, accuracy: 1e-12)  // (1 * 1 + 2 * 3) / (1 + 2)
        XCTAssertEqual(coh.1, run(.sft(lossOn: .response)).1)
    }
}
