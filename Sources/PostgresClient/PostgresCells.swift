import CLibPQ

extension PostgresSession {
    /// Runs one statement with `$1…` parameters (text format) and hands `body` the result's cells where libpq
    /// keeps them: no `String` per cell and no row arrays (the `PostgresRows` copy was ~6% of the projection
    /// rebuild's CPU when reading events). The cells are valid only inside `body`. The statement must return rows.
    public func withResult<T>(_ sql: String, _ parameters: [String?], _ body: (PostgresCells) throws -> T) throws -> T {
        let connection = libpqHandle
        let result: OpaquePointer? = withCParameters(parameters) { params in
            PQexecParams(connection, sql, Int32(parameters.count), nil, params, nil, nil, 0)
        }
        guard let result else { throw PostgresError.connectionLost(reason: Libpq.errorMessage(connection)) }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_TUPLES_OK else { throw Libpq.error(of: result, connection) }
        return try body(PostgresCells(result: result))
    }
}

/// The cells of one result, read in place (text format), inside `PostgresSession.withResult`'s body only.
public struct PostgresCells {
    private let result: OpaquePointer

    fileprivate init(result: OpaquePointer) { self.result = result }

    public var rowCount: Int { Int(PQntuples(result)) }
    public var columnCount: Int { Int(PQnfields(result)) }

    /// SQL NULL.
    public func isNull(_ row: Int, _ column: Int) -> Bool {
        PQgetisnull(result, Int32(row), Int32(column)) != 0
    }

    /// The cell's text as a String ("" for NULL).
    public func string(_ row: Int, _ column: Int) -> String {
        String(cString: PQgetvalue(result, Int32(row), Int32(column)))
    }

    /// The cell's text as bytes, without copying (valid only inside the `withResult` body; empty for NULL).
    public func bytes(_ row: Int, _ column: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: PQgetvalue(result, Int32(row), Int32(column)), count: Int(PQgetlength(result, Int32(row), Int32(column))))
    }

    /// The cell as a bigint (its decimal text); nil for NULL, an empty cell or anything that is not one.
    public func int64(_ row: Int, _ column: Int) -> Int64? {
        let bytes = bytes(row, column)
        guard bytes.count > 0 else { return nil }
        return bytes.withMemoryRebound(to: UInt8.self) { Int64(decimal: $0) }
    }
}
