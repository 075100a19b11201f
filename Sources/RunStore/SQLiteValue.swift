/// One SQLite value, as bound to a statement parameter or read from a result column.
///
/// SQLite is dynamically typed: a column holds whichever of these five storage classes was
/// written. `Double.nan` cannot be stored (SQLite turns it into NULL).
public enum SQLiteValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// The integer value; a real with an integral value converts, everything else is nil.
    public var int64: Int64? {
        switch self {
        case .integer(let v): return v
        case .real(let v) where v.rounded() == v && abs(v) < 9.2e18: return Int64(v)
        default: return nil
        }
    }

    /// `int64` as `Int`.
    public var int: Int? { int64.map { Int($0) } }

    /// The numeric value of an integer or a real; nil otherwise.
    public var double: Double? {
        switch self {
        case .integer(let v): return Double(v)
        case .real(let v): return v
        default: return nil
        }
    }

    /// The text value; nil for every other storage class.
    public var string: String? {
        if case .text(let s) = self { return s }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// The value as `sqlite3` would print it (NULL as "NULL", blobs as x'..').
    public var description: String {
        switch self {
        case .null: return "NULL"
        case .integer(let v): return String(v)
        case .real(let v): return String(v)
        case .text(let s): return s
        case .blob(let b): return "x'" + b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + "'"
        }
    }
}

extension SQLiteValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByStringLiteral, ExpressibleByNilLiteral, ExpressibleByBooleanLiteral
{
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(nilLiteral: ()) { self = .null }
    /// Booleans are stored as 0 / 1, as SQLite itself does.
    public init(booleanLiteral value: Bool) { self = .integer(value ? 1 : 0) }
}

extension SQLiteValue {
    public init(_ v: Int) { self = .integer(Int64(v)) }
    public init(_ v: Int64) { self = .integer(v) }
    public init(_ v: Double) { self = .real(v) }
    public init(_ v: String) { self = .text(v) }
    public init(_ v: String?) { self = v.map { .text($0) } ?? .null }
    public init(_ v: Int64?) { self = v.map { .integer($0) } ?? .null }
    public init(_ v: Int?) { self = v.map { .integer(Int64($0)) } ?? .null }
    public init(_ v: Double?) { self = v.map { .real($0) } ?? .null }
}
