/// One response of one probe, with where its text came from (`responses.origin` in the run store):
/// `data`, `derived:<kind>:seed=S`, `generated:command=...`, `generated:model=...`, `greedy:...`.
/// Built by the probe set (module Probes) and recorded as it is by the run store.
public struct ProbeResponse: Sendable, Equatable {
    public var category: String
    public var text: String
    public var origin: String
    /// False for a response its file wrote without the separator that joins it to the prompt (an explicit-prompt
    /// HH response without its leading space): scored as written, right after the prompt.
    public var separated: Bool

    public init(category: String, text: String, origin: String, separated: Bool = true) {
        self.category = category
        self.text = text
        self.origin = origin
        self.separated = separated
    }
}
