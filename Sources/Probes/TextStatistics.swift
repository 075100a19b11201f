/// The words compared by the audit's overlap: maximal runs of letters and digits, lower-cased
/// (punctuation and apostrophes split words, so "don't" gives "don" and "t" in both texts alike).
func overlapWords(_ text: String) -> Set<String> {
    var words: Set<String> = []
    var current = ""
    for ch in text.lowercased() {
        if ch.isLetter || ch.isNumber {
            current.append(ch)
        } else if !current.isEmpty {
            words.insert(current)
            current = ""
        }
    }
    if !current.isEmpty { words.insert(current) }
    return words
}

/// Jaccard overlap |A ∩ B| / |A ∪ B| of the word sets of two texts; 1 when both have no words.
func jaccard(_ a: String, _ b: String) -> Double {
    jaccard(overlapWords(a), overlapWords(b))
}

func jaccard(_ a: Set<String>, _ b: Set<String>) -> Double {
    let union = a.union(b).count
    guard union > 0 else { return 1 }
    return Double(a.intersection(b).count) / Double(union)
}

/// min / median / mean / max of a list of counts (median of an even count: mean of the middle two).
public struct LengthStats: Sendable, Equatable {
    public var count: Int
    public var min: Int
    public var median: Double
    public var mean: Double
    public var max: Int

    init(_ values: [Int]) {
        let sorted = values.sorted()
        count = sorted.count
        guard let first = sorted.first, let last = sorted.last else {
            min = 0; median = 0; mean = 0; max = 0
            return
        }
        min = first
        max = last
        let mid = sorted.count / 2
        median = sorted.count % 2 == 1 ? Double(sorted[mid]) : Double(sorted[mid - 1] + sorted[mid]) / 2
        mean = Double(sorted.reduce(0, +)) / Double(sorted.count)
    }
}
