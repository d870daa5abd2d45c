import CLibPQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// `COPY … FROM STDIN (FORMAT binary)` (the projections' rebuild swap) and reading a result's cells in place
// (`PostgresSession.withResult`, the projections' event reader). Both run inside the caller's `withSession`
// body (on the connection's thread, in its transaction).

/// Rows for `COPY table (columns) FROM STDIN (FORMAT binary)`, streamed to the server in chunks.
///
/// Why binary: nothing to escape on either side (a view body is sent as its bytes), and no array
/// literal to build and parse, which is what the multi-row `INSERT … unnest($n::json[])` cost
/// (`array_in` and the literal builder were ~15% of the rebuild's CPU). `json` columns still get
/// PostgreSQL's validation (`json_recv`), exactly like the text input.
public struct PostgresCopyIn {
    private let connection: OpaquePointer
    private var buffer: [UInt8] = []
    private(set) var rows = 0
    /// Bytes buffered before they are handed to libpq.
    private static let chunk = 1 << 20

    /// Runs `COPY … FROM STDIN (FORMAT binary)` (`sql`), with `body` writing the rows; returns how many.
    /// A throw from `body` aborts the COPY (the server rolls the statement back) and is rethrown.
    public static func run(_ s: PostgresSession, _ sql: String, _ body: (inout PostgresCopyIn) throws -> Void) throws -> Int {
        let connection = s.libpqHandle
        try Libpq.expect(PQexec(connection, sql), PGRES_COPY_IN, connection)
        var copy = PostgresCopyIn(connection: connection)
        copy.buffer.reserveCapacity(chunk + 64 * 1024)
        // Signature, flags, header extension length.
        copy.buffer.append(contentsOf: [0x50, 0x47, 0x43, 0x4F, 0x50, 0x59, 0x0A, 0xFF, 0x0D, 0x0A, 0x00])
        copy.raw32(0)
        copy.raw32(0)
        do {
            try body(&copy)
            copy.int16(-1) // trailer
            try copy.send()
            try Libpq.wait(connection) { PQputCopyEnd(connection, nil) }
        } catch {
            _ = PQputCopyEnd(connection, "aborted by the client")
            _ = try? Libpq.finish(connection)
            throw error
        }
        try Libpq.finish(connection)
        return copy.rows
    }

    private init(connection: OpaquePointer) { self.connection = connection }

    /// Starts a row of `fields` columns.
    public mutating func row(_ fields: Int) throws {
        if buffer.count >= Self.chunk { try send() }
        rows += 1
        int16(Int16(fields))
    }

    /// A `text` or `json` value.
    public mutating func text(_ value: String) {
        if value.utf8.withContiguousStorageIfAvailable({ field($0) }) == nil { bytes(Array(value.utf8)) }
    }

    /// A `text` or `json` value given as UTF-8 bytes.
    public mutating func bytes(_ value: [UInt8]) {
        value.withUnsafeBufferPointer { field($0) }
    }

    public mutating func int64(_ value: Int64) {
        raw32(8)
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }

    public mutating func int32(_ value: Int32) {
        raw32(4)
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }

    public mutating func bool(_ value: Bool) {
        raw32(1)
        buffer.append(value ? 1 : 0)
    }

    private mutating func field(_ value: UnsafeBufferPointer<UInt8>) {
        raw32(Int32(value.count))
        buffer.append(contentsOf: value)
    }

    private mutating func raw32(_ value: Int32) {
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }

    private mutating func int16(_ value: Int16) {
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }

    /// Hands the buffered bytes to libpq.
    private mutating func send() throws {
        guard !buffer.isEmpty else { return }
        let connection = connection
        try buffer.withUnsafeBufferPointer { b in
            try b.withMemoryRebound(to: CChar.self) { c in
                try Libpq.wait(connection) { PQputCopyData(connection, c.baseAddress, Int32(c.count)) }
            }
        }
        buffer.removeAll(keepingCapacity: true)
        // On a non-blocking connection PQputCopyData queues what the socket does not take at once in libpq's own
        // output buffer, which then grows without bound while the server is slower than this loop: heaptrack of
        // `routeplane-bench memory` showed 100 MB there at the controller's peak. Wait until it is sent.
        try Libpq.flush(connection)
    }
}

/// Small libpq helpers for `PostgresCopyIn` and `PostgresSession.withResult` (errors as `PostgresError`, like `PostgresSession`).
enum Libpq {
    /// Calls a libpq function that answers 1 (done), 0 (would block: the connection may be in
    /// non-blocking mode; wait until the socket is writable and call again) or -1 (failed).
    static func wait(_ connection: OpaquePointer, _ call: () -> Int32) throws {
        while true {
            switch call() {
            case 1: return
            case 0: waitForSocket(connection)
            default: throw PostgresError.connectionLost(reason: errorMessage(connection))
            }
        }
    }

    /// Sends everything libpq holds for the server, waiting for the socket as needed.
    static func flush(_ connection: OpaquePointer) throws {
        while true {
            let flushed = PQflush(connection)
            if flushed == 0 { return }
            if flushed < 0 { throw PostgresError.connectionLost(reason: errorMessage(connection)) }
            waitForSocket(connection)
        }
    }

    /// Waits (up to a second) until the socket is writable or readable; reads what arrived.
    private static func waitForSocket(_ connection: OpaquePointer) {
        var pfd = pollfd(fd: PQsocket(connection), events: Int16(POLLOUT | POLLIN), revents: 0)
        _ = poll(&pfd, 1, 1000)
        if pfd.revents & Int16(POLLIN) != 0 { _ = PQconsumeInput(connection) }
    }

    /// Flushes what libpq still holds (non-blocking mode) and reads results until the command is over;
    /// throws the first error.
    static func finish(_ connection: OpaquePointer) throws {
        while true {
            let flushed = PQflush(connection)
            if flushed == 0 { break }
            if flushed < 0 { throw PostgresError.connectionLost(reason: errorMessage(connection)) }
            waitForSocket(connection)
        }
        var failure: (any Error)?
        while let result = PQgetResult(connection) {
            defer { PQclear(result) }
            if failure == nil, PQresultStatus(result) != PGRES_COMMAND_OK { failure = error(of: result, connection) }
        }
        if let failure { throw failure }
    }

    /// Checks that `result` has `status` (clearing it); throws its error otherwise.
    static func expect(_ result: OpaquePointer?, _ status: ExecStatusType, _ connection: OpaquePointer) throws {
        guard let result else { throw PostgresError.connectionLost(reason: errorMessage(connection)) }
        defer { PQclear(result) }
        guard PQresultStatus(result) == status else { throw error(of: result, connection) }
    }

    static func error(of result: OpaquePointer, _ connection: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let sqlState = field("C") ?? ""
        let message = field("M") ?? errorMessage(connection)
        if PQstatus(connection) != CONNECTION_OK || sqlState.hasPrefix("08") || sqlState.hasPrefix("57P") {
            return .connectionLost(reason: sqlState.isEmpty ? message : "\(sqlState): \(message)")
        }
        return .server(sqlState: sqlState, message: message, detail: field("D"))
    }

    static func errorMessage(_ connection: OpaquePointer) -> String {
        var text = String(cString: PQerrorMessage(connection))
        while text.last?.isWhitespace == true { text.removeLast() }
        return text
    }
}

extension Int64 {
    // Internal: the text form of a bigint cell, parsed without making a String (`PostgresCells.int64`).
    /// Parses an optional minus sign and decimal digits; nil for anything else or overflow.
    init?(decimal bytes: UnsafeBufferPointer<UInt8>) {
        var i = 0
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { i = 1 }
        guard i < bytes.count else { return nil }
        var value: Int64 = 0
        while i < bytes.count {
            let d = bytes[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = negative ? m.subtractingReportingOverflow(Int64(d)) : m.addingReportingOverflow(Int64(d))
            guard !o1, !o2 else { return nil }
            value = a
            i += 1
        }
        self = value
    }
}
