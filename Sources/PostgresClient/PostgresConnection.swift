import CLibPQ
import Dispatch
import Foundation
import Logging

/// One libpq connection, used in one of two ways:
/// - `withSession`: a synchronous body of blocking libpq calls (transactions, migrations, LISTEN) runs on this
///   connection's own serial `DispatchQueue` (a Dispatch worker thread), never on a NIO event loop or Swift's
///   cooperative pool. With a bounded pool, at most `maxConnections` threads are ever blocked in libpq at once.
/// - `execute(prepared:)`/`query(prepared:)` (async): one statement through libpq's non-blocking API. The
///   caller's thread sends it without blocking and suspends; `PostgresIOLoop`'s thread, already polling the
///   socket, wakes when the answer arrives and resumes the caller (no thread hop to send, none blocked in libpq).
public final class PostgresConnection: @unchecked Sendable {
    // Why @unchecked Sendable is safe: libpq's rule is "one thread at a time per PGconn". A connection is used
    // by one party at a time: the pool leases it to one holder, who either runs blocks on `queue` (a serial
    // queue) or runs one non-blocking statement at a time, during which the `PGconn` passes from the
    // caller's thread to the I/O thread and back through a lock and a continuation (both synchronising).
    // `close` is only called on a connection nobody holds. `label` and `socket` are immutable.
    private let queue: DispatchQueue
    private var handle: OpaquePointer?
    /// The connection's socket (for the I/O loop); libpq keeps one socket for a connection's whole life.
    private let socket: Int32
    /// This connection's socket in the I/O loop, from its first async statement (touched only by the holder, like `handle`).
    private var watch: PostgresIOLoop.Watch?
    /// Statements prepared on this connection (touched only by the holder, like `handle`). A reconnect makes a
    /// new `PostgresConnection`, so a new server session starts with an empty set and prepares again.
    private let prepared = PreparedStatements()
    public let label: String

    private init(handle: OpaquePointer, label: String) {
        self.handle = handle
        self.label = label
        self.socket = PQsocket(handle)
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
        // libpq's own PGAPPNAME, when set, names the process in pg_stat_activity (e.g. which controller of several).
        let applicationName = getenv("PGAPPNAME").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "routeplane"
        let values = [url, String(connectTimeoutSeconds), applicationName, "1", "10", "5", "3"]
        let cKeys = keys.map { strdup($0) }
        let cValues = values.map { strdup($0) }
        defer { (cKeys + cValues).forEach { free($0) } }
        var keyPtrs = cKeys.map { UnsafePointer<CChar>($0) } + [nil]
        var valuePtrs = cValues.map { UnsafePointer<CChar>($0) } + [nil]
        guard let conn = PQconnectdbParams(&keyPtrs, &valuePtrs, 1) else {
            throw PostgresError.connectionUnavailable(reason: "libpq could not allocate a connection")
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(conn)
            throw PostgresError.connectionUnavailable(reason: message)
        }
        // Server NOTICEs ("relation … already exists, skipping") are not errors: keep them off stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        // Sends never wait for the socket (the async path needs it; libpq's blocking calls — PQexec and
        // friends, used by `withSession` — still wait for their results whatever this setting).
        guard PQsetnonblocking(conn, 1) == 0 else {
            let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
            PQfinish(conn)
            throw PostgresError.connectionUnavailable(reason: "cannot make the connection non-blocking: \(message)")
        }
        return conn
    }

    /// Runs `body` with exclusive use of the connection, on the connection's thread.
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                guard let handle = self.handle else {
                    continuation.resume(throwing: PostgresError.connectionLost(reason: "connection \(self.label) is closed"))
                    return
                }
                continuation.resume(with: Result { try body(PostgresSession(handle: handle, prepared: self.prepared)) })
            }
        }
    }

    public func close() {
        queue.async {
            if let watch = self.watch { PostgresIOLoop.shared.unwatch(watch) }
            if let handle = self.handle { PQfinish(handle) }
            self.handle = nil
        }
    }

    // MARK: - One statement, non-blocking (the caller must hold the connection: see ConnectionPool.withConnection)

    /// Runs `sql` as a statement prepared once per connection (like `PostgresSession.query(prepared:)`,
    /// re-prepared once if the server forgot it) and returns its rows.
    func query(prepared sql: String, _ parameters: [String?]) async throws -> PostgresRows {
        let result = try await execute(prepared: sql, parameters)
        return try PostgresSession.rows(of: result.raw, handle: try liveHandle())
    }

    /// The first column of the first row (nil for no row or SQL NULL).
    func value(prepared sql: String, _ parameters: [String?]) async throws -> String? {
        let result = try await execute(prepared: sql, parameters)
        try PostgresSession.check(result.raw, handle: try liveHandle())
        guard PQntuples(result.raw) > 0, PQnfields(result.raw) > 0, PQgetisnull(result.raw, 0, 0) == 0 else { return nil }
        return String(cString: PQgetvalue(result.raw, 0, 0))
    }

    private func liveHandle() throws -> OpaquePointer {
        guard let handle else { throw PostgresError.connectionLost(reason: "connection \(label) is closed") }
        return handle
    }

    /// The result of the prepared statement (checked only for "statement unknown", which re-prepares once).
    private func execute(prepared sql: String, _ parameters: [String?]) async throws -> PGResultBox {
        let handle = try liveHandle()
        var attempt = 0
        while true {
            let name: String
            if let known = prepared.names[sql] {
                name = known
            } else {
                prepared.counter += 1
                name = "rp_\(prepared.counter)"
                let count = Int32(parameters.count)
                let made = try await roundTrip(handle) { PQsendPrepare($0, name, sql, count, nil) }
                try PostgresSession.check(made.raw, handle: handle)
                prepared.names[sql] = name
            }
            let result = try await roundTrip(handle) { conn in
                withCParameters(parameters) { PQsendQueryPrepared(conn, name, Int32(parameters.count), $0, nil, nil, 0) }
            }
            if attempt == 0, PostgresSession.isUnknownStatement(result.raw) {
                prepared.names[sql] = nil
                attempt += 1
                continue
            }
            return result
        }
    }

    /// Sends one command with `send` (a `PQsend…` call: non-blocking), then waits for its result, which the
    /// I/O loop's thread reads when the socket is ready.
    private func roundTrip(_ handle: OpaquePointer, _ send: (OpaquePointer) -> Int32) async throws -> PGResultBox {
        let loop = PostgresIOLoop.shared
        let watch: PostgresIOLoop.Watch
        if let existing = self.watch {
            watch = existing
        } else {
            watch = loop.watch(socket: socket)
            self.watch = watch
        }
        let result = try await loop.perform(on: watch, connection: PGConnHandle(raw: handle)) { conn in
            guard send(conn) == 1 else { throw PostgresError.connectionLost(reason: PostgresIOLoop.errorMessage(conn)) }
            let flushed = PQflush(conn)
            guard flushed >= 0 else { throw PostgresError.connectionLost(reason: PostgresIOLoop.errorMessage(conn)) }
            return flushed == 1
        }
        guard let result else { throw PostgresError.connectionLost(reason: PostgresIOLoop.errorMessage(handle)) }
        return result
    }
}

/// Calls `body` with `parameters` as C strings (NULL for nil), all copied into one temporary buffer (one
/// allocation, on the stack when small) instead of a `strdup` each.
func withCParameters<R>(_ parameters: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> R) rethrows -> R {
    if parameters.isEmpty { return try body(nil) }
    var total = 0
    for parameter in parameters { total += (parameter?.utf8.count ?? 0) + 1 }
    return try withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: parameters.count) { pointers in
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: total) { bytes in
            var offset = 0
            for (i, parameter) in parameters.enumerated() {
                guard let parameter else {
                    pointers[i] = nil
                    continue
                }
                let start = bytes.baseAddress! + offset
                let copied = parameter.utf8.withContiguousStorageIfAvailable { utf8 -> Int in
                    guard let source = utf8.baseAddress, !utf8.isEmpty else { return 0 }
                    // A C string ends at the first NUL, as a strdup'ed copy did.
                    let length = memchr(source, 0, utf8.count).map { UnsafeRawPointer($0) - UnsafeRawPointer(source) } ?? utf8.count
                    start.update(from: source, count: length)
                    return length
                } ?? {
                    var n = 0
                    for byte in parameter.utf8 {
                        if byte == 0 { break }
                        start[n] = byte
                        n += 1
                    }
                    return n
                }()
                start[copied] = 0
                offset += copied + 1
                pointers[i] = UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)
            }
            return try body(UnsafePointer(pointers.baseAddress!))
        }
    }
}

/// Rows of a result, copied out of libpq in text format. A collection of `PostgresRow`s (typed cells by column
/// name); `rows` holds the raw text by position.
public struct PostgresRows: Sendable, RandomAccessCollection {
    public let columns: [String]
    public let rows: [[String?]]
    public let affectedRows: Int

    public subscript(row: Int, column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }
    public var count: Int { rows.count }
    public var startIndex: Int { 0 }
    public var endIndex: Int { rows.count }
    public subscript(position: Int) -> PostgresRow { PostgresRow(columns: columns, values: rows[position]) }
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

    /// The session's libpq connection (`PGconn *`), for the protocol features in this module that this type
    /// does not wrap (COPY, cells in place). Only inside the `withSession` body, on its thread. The connection is
    /// in non-blocking mode (see `PostgresConnection.open`): `PQputCopyData`, `PQputCopyEnd` and `PQflush` may
    /// answer "would block"; `PQexec…` and `PQgetResult` still wait.
    var libpqHandle: OpaquePointer { handle }

    /// The server process serving this session (libpq's `PQbackendPID`, no round trip): after the connection broke
    /// mid-transaction, `pg_stat_activity` tells whether that process may still commit.
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Runs one statement with `$1…` parameters (text format). Values are never interpolated into SQL.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> PostgresRows {
        let result: OpaquePointer? = withCParameters(parameters) { params in
            PQexecParams(handle, sql, Int32(parameters.count), nil, params, nil, nil, 0)
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
    public func value(prepared sql: String, _ parameters: [String?]) throws -> String? {
        let result = try executePrepared(sql, parameters)
        defer { PQclear(result) }
        try check(result)
        guard PQntuples(result) > 0, PQnfields(result) > 0, PQgetisnull(result, 0, 0) == 0 else { return nil }
        return String(cString: PQgetvalue(result, 0, 0))
    }

    /// Executes `sql` as a prepared statement; the caller clears (or consumes) the result.
    private func executePrepared(_ sql: String, _ parameters: [String?]) throws -> OpaquePointer {
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
            let result: OpaquePointer? = withCParameters(parameters) { params in
                PQexecPrepared(handle, name, Int32(parameters.count), params, nil, nil, 0)
            }
            guard let result else { throw PostgresError.connectionLost(reason: errorMessage()) }
            if attempt == 0, Self.isUnknownStatement(result) {
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
        guard socket >= 0 else { throw PostgresError.connectionLost(reason: "no socket: \(errorMessage())") }
        var pfd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let millis = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let ready = poll(&pfd, 1, millis)
        if ready < 0 && errno != EINTR { throw PostgresError.connectionLost(reason: "poll failed: errno \(errno)") }
        if ready > 0 {
            guard PQconsumeInput(handle) == 1 else { throw PostgresError.connectionLost(reason: errorMessage()) }
            received = drainNotifications()
        }
        if PQstatus(handle) != CONNECTION_OK { throw PostgresError.connectionLost(reason: errorMessage()) }
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

    /// "Prepared statement does not exist" (SQLSTATE 26000): the server session forgot it (DEALLOCATE, reset).
    static func isUnknownStatement(_ result: OpaquePointer) -> Bool {
        guard PQresultStatus(result) == PGRES_FATAL_ERROR, let code = PQresultErrorField(result, Int32(UInt8(ascii: "C"))) else { return false }
        return String(cString: code) == "26000"
    }

    @discardableResult
    private func consume(_ result: OpaquePointer?) throws -> PostgresRows {
        guard let result else {
            throw PostgresError.connectionLost(reason: errorMessage())
        }
        defer { PQclear(result) }
        return try Self.rows(of: result, handle: handle)
    }

    /// Checks `result` and copies its rows out (the caller still owns and clears `result`).
    static func rows(of result: OpaquePointer, handle: OpaquePointer) throws -> PostgresRows {
        try check(result, handle: handle)
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

    private func check(_ result: OpaquePointer) throws {
        try Self.check(result, handle: handle)
    }

    /// Throws the typed error of a failed result; returns for a successful one.
    static func check(_ result: OpaquePointer, handle: OpaquePointer) throws {
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return
        default:
            func field(_ code: Character) -> String? {
                guard let p = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
                return String(cString: p)
            }
            let sqlState = field("C") ?? ""
            let message = field("M") ?? String(cString: PQerrorMessage(handle)).trimmingCharacters(in: .whitespacesAndNewlines)
            let detail = field("D")
            if PQstatus(handle) != CONNECTION_OK || sqlState.hasPrefix("08") || sqlState.hasPrefix("57P") {
                throw PostgresError.connectionLost(reason: sqlState.isEmpty ? message : "\(sqlState): \(message)")
            }
            throw PostgresError.server(sqlState: sqlState, message: message, detail: detail)
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
