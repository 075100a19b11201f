/// AlignScope's version, as `alignscope --version` prints it: the release (raised with each wave of issues that
/// changes what a store holds or how a spec reads) beside the store schema and the libraries it runs on.
public enum AlignScopeVersion {
    public static let release = "0.3.0"
}
