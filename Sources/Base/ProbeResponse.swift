/// One response of one probe, with where its text came from (`responses.origin` in the run store):
/// `data`, `derived:<kind>:seed=S`, `generated:command=...`, `generated:model=...`, `greedy:...`.
/// Built by the probe set (module Probes) and recorded as it is by the run store.
public struct ProbeResponse: Sendable, Equatable {
    public var category: String
    public var text: String
    public var origin: String

    public init(category: String, text: String, origin: String) {
        self.category = category
        self.text = text
        self.origin = origin
    }
}
