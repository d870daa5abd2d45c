/// One row of `PostgresRows`: cells read by column name (the name in the statement's select list) as typed
/// values. Every accessor answers nil for SQL NULL, an unknown column, or text that is not of the type, so the
/// caller decides what a missing value means (usually "malformed row").
public struct PostgresRow: Sendable {
    public let columns: [String]
    /// The cells' text by position (nil for SQL NULL).
    public let values: [String?]

    public init(columns: [String], values: [String?]) {
        self.columns = columns
        self.values = values
    }

    /// The cell's text.
    public func string(_ column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return values[index]
    }

    /// A `bigint` (or any integer) cell.
    public func int64(_ column: String) -> Int64? { string(column).flatMap { Int64($0) } }

    /// A non-negative integer cell (e.g. `xid8`).
    public func uint64(_ column: String) -> UInt64? { string(column).flatMap { UInt64($0) } }

    /// A `double precision` or `numeric` cell.
    public func double(_ column: String) -> Double? { string(column).flatMap { Double($0) } }

    /// A `boolean` cell (`t` or `f` in text format).
    public func bool(_ column: String) -> Bool? {
        switch string(column) {
        case "t": true
        case "f": false
        default: nil
        }
    }

    /// Whether the cell is SQL NULL (false for an unknown column).
    public func isNull(_ column: String) -> Bool {
        guard let index = columns.firstIndex(of: column) else { return false }
        return values[index] == nil
    }
}
