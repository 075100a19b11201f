/// Rated feedback (`{prompt, response | completion, rating | score}` lines, several responses per prompt)
/// turned into what the pairwise and unpaired objectives train on.
public enum RatedFeedback {
    /// Pairs for a reward model: for each prompt (in the order prompts first appear), every two of its rated
    /// responses whose ratings differ, in line order (line i before line j): the higher rated is `chosen`, the
    /// lower `rejected`, and the pair's number field `margin` is the rating difference (always > 0). Equal
    /// ratings form no pair. The pair keeps the first line's prompt and its line number (for errors).
    /// Lines that are not rated are returned as they are.
    public static func pairs(_ examples: [PreferenceExample]) -> [PreferenceExample] {
        var order: [String] = [], byPrompt: [String: [PreferenceExample]] = [:]
        var out: [PreferenceExample] = []
        for ex in examples {
            guard ex.rating != nil, ex.chosen == nil, ex.response != nil else { out.append(ex); continue }
            let key = promptKey(ex.prompt) + "\u{0}" + (ex.promptText ?? "")
            if byPrompt[key] == nil { order.append(key) }
            byPrompt[key, default: []].append(ex)
        }
        for key in order {
            let rated = byPrompt[key]!
            for i in rated.indices {
                for j in (i + 1)..<rated.count where rated[i].rating! != rated[j].rating! {
                    let (hi, lo) = rated[i].rating! > rated[j].rating! ? (rated[i], rated[j]) : (rated[j], rated[i])
                    var pair = rated[i]
                    pair.chosen = hi.response
                    pair.rejected = lo.response
                    pair.fields = ["chosen": hi.response!, "rejected": lo.response!]
                    pair.numbers["margin"] = hi.rating! - lo.rating!
                    pair.rating = nil
                    out.append(pair)
                }
            }
        }
        return out
    }

    /// Unpaired examples for KTO: each rated line becomes a `completion` that is desirable when its rating is at
    /// least `threshold`. Lines that are not rated are returned as they are.
    public static func unpaired(_ examples: [PreferenceExample], threshold: Double) -> [PreferenceExample] {
        examples.map { ex in
            guard let rating = ex.rating, ex.chosen == nil, let text = ex.response else { return ex }
            var out = ex
            out.fields = ["completion": text]
            out.label = rating >= threshold
            return out
        }
    }
}

extension PreferenceExample {
    /// A rated or unpaired line's response text (`response`, or `completion`).
    var response: String? { fields["response"] ?? fields["completion"] }
}
