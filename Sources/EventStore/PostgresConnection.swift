import CLibPQ
import Dispatch
import Foundation
import Logging

/// One libpq connection. libpq calls block, so every call runs on this connection's own serial
/// `DispatchQueue` (a Dispatch worker thread), never on a NIO event loop or Swift's cooperative pool.
/// With a bounded pool, at most `maxConnections` threads are ever blocked in libpq at once.
public final class PostgresConnection: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `handle` is read and written only by blocks running on `queue`,
    // a serial queue, so libpq's rule "one thread at a time per PGconn" holds. `label` is immutable.
    private let queue: DispatchQueue
    private var handle: OpaquePointer?
    /// Statements prepared on this connection (touched only on `queue`, like `handle`). A reconnect makes a
    /// new `PostgresConnection`, so a new server session starts with an empty set and prepares again.
    private let prepared = PreparedStatements()
    public let label: String

    private init(handle: OpaquePointer, label: String) {
        self.handle = handle
        self.label = label
        self.queue = DispatchQueue(label: "routeplane.pg.\(label)")
    }

    /// Opens a connection; `url` is a libpq URI or key=value string.
    public static func connect(url: String, label: String, connectTimeoutSeconds: Int = 5) async throws -> PostgresConnection {
        let queue = DispatchQueue(label: "routeplane.pg.connect.\(label)")
        let handle: OpaquePointer = try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try PostgresConnection.open(url: url, label: label, connectTimeoutSeconds: connectTimeoutSeconds) })
            }
        }
        return PostgresConnection(handle: handle, label: label)
    }

    private static func open(url: String, label: String, connectTimeoutSeconds: Int) throws -> OpaquePointer {
        let keys = ["dbname", "connect_timeout", "application_name", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"]
        let values = [url, String(connectTimeoutSeconds), "routeplane", "1", "10", "5", "3"]
        let cKeys = keys.map { strdup($0) }
        let cValues = values.map { strdup($0) }
        defer { (cKeys + cValues).forEach { free($0) } }
        var keyPtrs = cKeys.map { UnsafePointer<CChar>($0) } + [nil]
        var valuePtrs = cValues.map { UnsafePointer<CChar>($0) } + [nil]
        guard let conn = PQconnectdbParams(&keyPtrs, &valuePtrs, 1) else {
            throw EventStoreError.connectionUnavailable(reason: "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(conn)
            throw EventStoreError.connectionUnavailable(reason: message)
        }
        // Server NOTICEs ("relation … already exists, skipping") are not errors: keep them off stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        return conn
    }

    /// Runs `body` with exclusive use of the connection, on the connection's thread.
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                guard let handle = self.handle else {
                    continuation.resume(throwing: EventStoreError.connectionLost(reason: "connection \(self.label) is closed"))
                    return
                }
                continuation.resume(with: Result { try body(PostgresSession(handle: handle, prepared: self.prepared)) })
            }
        }
    }

    public func close() {
        queue.async {
            if let handle = self.handle { PQfinish(handle) }
            self.handle = nil
        }
    }
}

/// Rows of a result, copied out of libpq in text format.
public struct PostgresRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    public let affectedRows: Int

    public subscript(row: Int, column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }
    public var count: Int { rows.count }
}

/// The names of the statements prepared in one server session, by SQL text.
final class PreparedStatements {
    var names: [String: String] = [:]
    var counter = 0
}

/// Exclusive access to a connection during one `withSession` call. Not Sendable: it lives on the connection's thread.
public struct PostgresSession {
    let handle: OpaquePointer
    let prepared: PreparedStatements

    /// Runs one statement with `$1…` parameters (text format). Values are never interpolated into SQL.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> PostgresRows {
        let cParams: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cParams.forEach { free($0) } }
        let result: OpaquePointer? = cParams.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(buffer.count, 1)) { params in
                PQexecParams(handle, sql, Int32(parameters.count), nil, parameters.isEmpty ? nil : params, nil, nil, 0)
            }
        }
        return try consume(result)
    }

    /// Like `query`, but as a statement prepared once per connection (`PQprepare`, then `PQexecPrepared`):
    /// the server parses and plans it once instead of on every call. For hot statements of fixed text.
    /// If the server forgot the statement (`DEALLOCATE`, SQLSTATE 26000), it is prepared again once.
    @discardableResult
    public func query(prepared sql: String, _ parameters: [String?] = []) throws -> PostgresRows {
        try consume(executePrepared(sql, parameters))
    }

    /// The first column of the first row (nil for no row or SQL NULL), without copying out a `PostgresRows`.
    func value(prepared sql: String, _ parameters: [String?]) throws -> String? {
        let result = try executePrepared(sql, parameters)
        defer { PQclear(result) }
        try check(result)
        guard PQntuples(result) > 0, PQnfields(result) > 0, PQgetisnull(result, 0, 0) == 0 else { return nil }
        return String(cString: PQgetvalue(result, 0, 0))
    }

    /// Executes `sql` as a prepared statement; the caller clears (or consumes) the result.
    private func executePrepared(_ sql: String, _ parameters: [String?]) throws -> OpaquePointer {
        let cParams: [UnsafeMutablePointer<CChar>?] = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { cParams.forEach { free($0) } }
        var attempt = 0
        while true {
            let name: String
            if let known = prepared.names[sql] {
                name = known
            } else {
                prepared.counter += 1
                name = "rp_\(prepared.counter)"
                try consume(PQprepare(handle, name, sql, Int32(parameters.count), nil))
                prepared.names[sql] = name
            }
            let result: OpaquePointer? = cParams.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { params in
                    PQexecPrepared(handle, name, Int32(parameters.count), parameters.isEmpty ? nil : params.baseAddress, nil, nil, 0)
                }
            }
            guard let result else { throw EventStoreError.connectionLost(reason: errorMessage()) }
            if attempt == 0, PQresultStatus(result) == PGRES_FATAL_ERROR,
               let code = PQresultErrorField(result, Int32(UInt8(ascii: "C"))), String(cString: code) == "26000" {
                // Prepared statement does not exist (the session was reset): prepare it again.
                PQclear(result)
                prepared.names[sql] = nil
                attempt += 1
                continue
            }
            return result
        }
    }

    /// Runs a script of several statements without parameters (migrations only).
    public func script(_ sql: String) throws {
        try consume(PQexec(handle, sql))
    }

    /// Waits up to `timeout` for a NOTIFY on this connection; returns the channels and payloads received.
    public func waitForNotifications(timeout: Duration) throws -> [(channel: String, payload: String)] {
        var received = drainNotifications()
        if !received.isEmpty { return received }
        let socket = PQsocket(handle)
        guard socket >= 0 else { throw EventStoreError.connectionLost(reason: "no socket: \(errorMessage())") }
        var pfd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let millis = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let ready = poll(&pfd, 1, millis)
        if ready < 0 && errno != EINTR { throw EventStoreError.connectionLost(reason: "poll failed: errno \(errno)") }
        if ready > 0 {
            guard PQconsumeInput(handle) == 1 else { throw EventStoreError.connectionLost(reason: errorMessage()) }
            received = drainNotifications()
        }
        if PQstatus(handle) != CONNECTION_OK { throw EventStoreError.connectionLost(reason: errorMessage()) }
        return received
    }

    private func drainNotifications() -> [(channel: String, payload: String)] {
        var out: [(String, String)] = []
        while let notify = PQnotifies(handle) {
            out.append((String(cString: notify.pointee.relname), String(cString: notify.pointee.extra)))
            PQfreemem(notify)
        }
        return out
    }

    private func errorMessage() -> String {
        String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    private func consume(_ result: OpaquePointer?) throws -> PostgresRows {
        guard let result else {
            throw EventStoreError.connectionLost(reason: errorMessage())
        }
        defer { PQclear(result) }
        try check(result)
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var row: [String?] = []
            row.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    row.append(nil)
                } else {
                    row.append(String(cString: PQgetvalue(result, Int32(r), Int32(c))))
                }
            }
            rows.append(row)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, rows: rows, affectedRows: affected)
    }

    /// Throws the typed error of a failed result; returns for a successful one.
    private func check(_ result: OpaquePointer) throws {
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return
        default:
            func field(_ code: Character) -> String? {
                guard let p = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
                return String(cString: p)
            }
            let sqlState = field("C") ?? ""
            let message = field("M") ?? errorMessage()
            let detail = field("D")
            if PQstatus(handle) != CONNECTION_OK || sqlState.hasPrefix("08") || sqlState.hasPrefix("57P") {
                throw EventStoreError.connectionLost(reason: sqlState.isEmpty ? message : "\(sqlState): \(message)")
            }
            throw EventStoreError.server(sqlState: sqlState, message: message, detail: detail)
        }
    }
}

/// PostgreSQL's text form of an array, for passing a Swift array as one `$n` parameter.
public enum PostgresArray {
    /// `{"a","b\"c"}`: every element quoted, `"` and `\` escaped. Built on UTF-8 bytes in one allocation
    /// (the scalar-by-scalar version showed up in the append profile for a 380-byte JSON payload).
    public static func literal(_ elements: [String]) -> String {
        literal(utf8: elements.map(\.utf8))
    }

    /// The same for elements that are already UTF-8 bytes (view JSON), without making Strings of them first.
    public static func literal(bytes elements: [[UInt8]]) -> String {
        literal(utf8: elements)
    }

    private static func literal<Bytes: Collection<UInt8>>(utf8 elements: [Bytes]) -> String {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var length = 2 + max(elements.count - 1, 0)
        for element in elements {
            length += 2
            for byte in element {
                length += (byte == quote || byte == backslash) ? 2 : 1
            }
        }
        return String(unsafeUninitializedCapacity: length) { out in
            var o = 0
            out[o] = UInt8(ascii: "{"); o += 1
            for (i, element) in elements.enumerated() {
                if i > 0 { out[o] = UInt8(ascii: ","); o += 1 }
                out[o] = quote; o += 1
                for byte in element {
                    if byte == quote || byte == backslash { out[o] = backslash; o += 1 }
                    out[o] = byte; o += 1
                }
                out[o] = quote; o += 1
            }
            out[o] = UInt8(ascii: "}"); o += 1
            return o
        }
    }
}
