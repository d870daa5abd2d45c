// The libnats connection: its options, connect (with credential retries), publish/request/subscribe and the C
// callbacks. Over 500 lines because connect, the options it applies and the callbacks it registers go through
// the connection's private initialiser and state; splitting the file would widen that access.

import CNATS
import Dispatch
import Foundation
import Logging
import Synchronization

/// How to reach NATS. Defaults: reconnect forever (every `reconnectWait` plus up to `reconnectJitter`), fail
/// requests and publishes at once while disconnected (nothing is buffered to be sent later, see
/// `bufferWhileReconnecting`), and deliver subscription messages on libnats's shared thread pool.
public struct NATSConfiguration: Sendable {
    /// `nats://host:port` URLs; libnats tries them in order (no randomisation, loopback-friendly).
    public var servers: [String]
    /// Connection name shown by the server (`/connz`).
    public var name: String
    public var connectTimeout: Duration = .seconds(2)
    public var reconnectWait: Duration = .milliseconds(250)
    public var reconnectJitter: Duration = .milliseconds(250)
    /// nil: forever.
    public var maxReconnectAttempts: Int? = nil
    public var pingInterval: Duration = .seconds(5)
    public var maxPingsOut: Int = 2
    /// A `.creds` file (user JWT and NKEY seed) for operator-mode deployments; `seedFile` when the seed is separate.
    public var credentialsFile: String? = nil
    public var seedFile: String? = nil
    /// Operator-mode credentials held in memory (a user JWT and a signer for the server's nonce), asked for at every
    /// connect and reconnect: a JWT renewed in between is used by the next reconnect, and no seed is written to disk.
    /// Takes precedence over `credentialsFile`.
    public var userCredentials: NATSUserCredentials? = nil
    /// Prefix of this connection's reply subjects (default `_INBOX`): a user whose permissions name only its own
    /// inbox (`_INBOX_<peer>.>`) must use it, or replies to its requests (direct gets) are refused by the server.
    public var inboxPrefix: String? = nil
    /// false (default): while reconnecting, publishes and requests fail immediately (`NATSError.notConnected`)
    /// instead of waiting in libnats's reconnect buffer. The relay needs this: a view buffered during an outage and
    /// flushed after the reconnect could land after a newer version that another relay published meanwhile.
    public var bufferWhileReconnecting: Bool = false
    /// Deliver messages of async subscriptions on libnats's bounded thread pool instead of one thread per subscription.
    public var useGlobalMessageDelivery: Bool = true
    /// true: `connect` fails if no server answers now. false (default): `connect` returns at once and libnats keeps
    /// trying in the background (`.connected` event when it succeeds), so a controller can start while NATS is down.
    public var failIfUnreachable: Bool = false
    /// TLS towards the server (see `NATSTLSSettings`); nil: TLS only if a URL says `tls://`, trusting the system's CAs.
    public var tls: NATSTLSSettings? = nil

    public init(servers: [String], name: String) {
        self.servers = servers
        self.name = name
    }

    public init(url: String, name: String) {
        self.init(servers: url.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }, name: name)
    }
}

/// A NATS user's credentials held in memory: `jwt` is asked for at every connect (so a renewed JWT takes effect at the
/// next reconnect) and `sign` signs the server's nonce with the user's nkey seed. Both are called on libnats threads
/// and must not block for long. `jwt` returning nil fails that connect attempt (libnats retries).
public struct NATSUserCredentials: Sendable {
    public var jwt: @Sendable () -> String?
    public var sign: @Sendable (_ nonce: [UInt8]) -> [UInt8]

    public init(jwt: @escaping @Sendable () -> String?, sign: @escaping @Sendable (_ nonce: [UInt8]) -> [UInt8]) {
        self.jwt = jwt
        self.sign = sign
    }
}

/// Connection state changes, from libnats callbacks.
public enum NATSConnectionEvent: Sendable, Equatable {
    /// The first connection succeeded after `connect` returned without one.
    case connected
    case disconnected
    /// Connected again; subscriptions have been re-sent to the server.
    case reconnected
    /// Closed for good (by `close()`, or reconnect attempts exhausted). No event follows.
    case closed
    /// An asynchronous error (e.g. a slow consumer dropping messages).
    case error(String)
}

public enum NATSConnectionStatus: Sendable, Equatable {
    case connecting, connected, reconnecting, disconnected, closed, draining
}

/// One libnats connection (`natsConnection`).
///
/// Threading: libnats runs its own threads (reader, flusher, reconnect, callbacks). Its connection calls are
/// thread-safe; the blocking ones (connect, close, requests, JetStream calls) run on a Dispatch queue, never
/// on Swift's cooperative threads. Callbacks reach Swift through `ConnectionCallbacks`, a Sendable object
/// whose only mutable state is behind a `Mutex`; libnats holds one retained reference to it, released by the
/// `closed` callback, which libnats invokes exactly once and last of this connection's callbacks (they are
/// serialized on one libnats thread). No callback object holds a `NATSConnection`, so the connection is never
/// destroyed on a libnats thread.
public final class NATSConnection: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `handle` is immutable after init and destroyed only in deinit, when no
    // Swift reference remains; every libnats natsConnection_* function used here is documented thread-safe.
    let handle: OpaquePointer
    let callbacks: ConnectionCallbacks
    public let name: String
    let logger: Logger

    private init(handle: OpaquePointer, callbacks: ConnectionCallbacks, name: String, logger: Logger) {
        self.handle = handle
        self.callbacks = callbacks
        self.name = name
        self.logger = logger
    }

    deinit {
        // Closes if still open (libnats then posts the closed callback, which releases `callbacks`) and frees.
        natsConnection_Destroy(handle)
    }

    /// Connects (or, with `failIfUnreachable == false`, starts connecting in the background).
    ///
    /// The connection is first tried in the foreground, up to three times when the server refuses the credentials:
    /// libnats 3.4.1 was seen (about 1 connection in 100 on a loaded machine, operator mode, in the foreground and in
    /// its retry-on-failed-connect mode) sending the JWT without the nonce signature, and the server refuses that as an
    /// authorization violation. Credentials that are really refused (unknown, revoked, expired) are refused three times
    /// within ~300 ms and the error is thrown. Without `failIfUnreachable`, a server that does not answer leaves the
    /// connection to libnats's background retry (a server that is down at start).
    public static func connect(_ configuration: NATSConfiguration, logger: Logger = Logger(label: "routeplane.nats")) async throws -> NATSConnection {
        var foreground = configuration
        foreground.failIfUnreachable = true
        for attempt in 1...3 {
            do {
                return try await openNow(foreground, logger: logger)
            } catch let error as NATSError where error.isCredentialRefusal && attempt < 3 {
                logger.debug("NATS refused the credentials; trying again", metadata: ["connection": "\(configuration.name)", "attempt": "\(attempt)"])
                try await Task.sleep(for: .milliseconds(100 * attempt))
            } catch {
                if configuration.failIfUnreachable { throw error }
                break
            }
        }
        return try await openNow(configuration, logger: logger)
    }

    private static func openNow(_ configuration: NATSConfiguration, logger: Logger) async throws -> NATSConnection {
        let callbacks = ConnectionCallbacks(name: configuration.name, logger: logger, userCredentials: configuration.userCredentials)
        let handle = try await NATSBlocking.run { NATSHandle(try open(configuration, callbacks: callbacks)) }
        return NATSConnection(handle: handle.pointer, callbacks: callbacks, name: configuration.name, logger: logger)
    }

    private static func open(_ c: NATSConfiguration, callbacks: ConnectionCallbacks) throws(NATSError) -> OpaquePointer {
        guard !c.servers.isEmpty else { throw .invalidArgument("no NATS server URL") }
        var options: OpaquePointer?
        try NATSError.check(natsOptions_Create(&options), "natsOptions_Create")
        guard let opts = options else { throw .library(status: "no memory", detail: "natsOptions_Create") }
        defer { natsOptions_Destroy(opts) }
        let servers = c.servers.map { UnsafePointer<CChar>(strdup($0)) }
        defer { servers.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        var serverList: [UnsafePointer<CChar>?] = servers
        try NATSError.check(natsOptions_SetServers(opts, &serverList, Int32(servers.count)), "servers \(c.servers)")
        try NATSError.check(natsOptions_SetNoRandomize(opts, true), "no randomize")
        try NATSError.check(natsOptions_SetName(opts, c.name), "name")
        try NATSError.check(natsOptions_SetTimeout(opts, c.connectTimeout.milliseconds), "timeout")
        try NATSError.check(natsOptions_SetAllowReconnect(opts, true), "allow reconnect")
        try NATSError.check(natsOptions_SetMaxReconnect(opts, Int32(clamping: c.maxReconnectAttempts ?? -1)), "max reconnect")
        try NATSError.check(natsOptions_SetReconnectWait(opts, c.reconnectWait.milliseconds), "reconnect wait")
        try NATSError.check(natsOptions_SetReconnectJitter(opts, c.reconnectJitter.milliseconds, c.reconnectJitter.milliseconds), "jitter")
        try NATSError.check(natsOptions_SetPingInterval(opts, c.pingInterval.milliseconds), "ping interval")
        try NATSError.check(natsOptions_SetMaxPingsOut(opts, Int32(c.maxPingsOut)), "max pings out")
        // 0 would mean libnats's 8 MB default; 1 byte means nothing fits, so a publish while reconnecting fails at once.
        try NATSError.check(natsOptions_SetReconnectBufSize(opts, c.bufferWhileReconnecting ? 8 * 1024 * 1024 : 1), "reconnect buffer")
        try NATSError.check(natsOptions_SetFailRequestsOnDisconnect(opts, true), "fail requests on disconnect")
        try NATSError.check(natsOptions_UseGlobalMessageDelivery(opts, c.useGlobalMessageDelivery), "global delivery")
        if c.userCredentials == nil, let file = c.credentialsFile {
            try NATSError.check(natsOptions_SetUserCredentialsFromFiles(opts, file, c.seedFile), "credentials \(file)")
        }
        if let prefix = c.inboxPrefix {
            try NATSError.check(natsOptions_SetCustomInboxPrefix(opts, prefix), "inbox prefix \(prefix)")
        }
        try c.tls?.apply(to: opts)

        // From here libnats may call back with `box`: it owns one retain, released by the closed callback.
        let box = Unmanaged.passRetained(callbacks).toOpaque()
        var setupStatus = NATS_OK
        if c.userCredentials != nil {
            setupStatus = natsOptions_SetUserCredentialsCallbacks(opts, { jwtOut, errorOut, closure in
                guard let credentials = ConnectionCallbacks.from(closure)?.userCredentials, let jwt = credentials.jwt() else {
                    errorOut?.pointee = strdup("no NATS user JWT available (not yet issued, or renewal failed)")
                    return NATS_ERR
                }
                jwtOut?.pointee = strdup(jwt)
                return NATS_OK
            }, box, { errorOut, signatureOut, lengthOut, nonce, closure in
                guard let credentials = ConnectionCallbacks.from(closure)?.userCredentials, let nonce else {
                    errorOut?.pointee = strdup("no NATS user key")
                    return NATS_ERR
                }
                let signature = credentials.sign(Array(UnsafeRawBufferPointer(start: nonce, count: strlen(nonce))))
                // libnats frees the signature with free().
                guard let out = malloc(max(signature.count, 1))?.assumingMemoryBound(to: UInt8.self) else { return NATS_NO_MEMORY }
                signature.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: signature.count) }
                signatureOut?.pointee = out
                lengthOut?.pointee = Int32(signature.count)
                return NATS_OK
            }, box)
        }
        if setupStatus == NATS_OK {
            setupStatus = natsOptions_SetDisconnectedCB(opts, { _, closure in
                ConnectionCallbacks.from(closure)?.emit(.disconnected)
            }, box)
        }
        if setupStatus == NATS_OK {
            setupStatus = natsOptions_SetReconnectedCB(opts, { _, closure in
                ConnectionCallbacks.from(closure)?.emit(.reconnected)
            }, box)
        }
        if setupStatus == NATS_OK {
            setupStatus = natsOptions_SetErrorHandler(opts, { nc, _, status, closure in
                // The server's own words when it sent them (e.g. `Permissions Violation for Subscription to "x"`).
                var text = String(cString: natsStatus_GetText(status))
                var last: UnsafePointer<CChar>?
                if let nc, natsConnection_GetLastError(nc, &last) != NATS_OK, let last, last.pointee != 0 {
                    text += ": " + String(cString: last)
                }
                ConnectionCallbacks.from(closure)?.emit(.error(text))
            }, box)
        }
        if setupStatus == NATS_OK {
            setupStatus = natsOptions_SetClosedCB(opts, { _, closure in
                guard let closure else { return }
                let callbacks = Unmanaged<ConnectionCallbacks>.fromOpaque(closure)
                callbacks.takeUnretainedValue().emit(.closed)
                callbacks.takeUnretainedValue().finish()
                callbacks.release()
            }, box)
        }
        if setupStatus == NATS_OK {
            setupStatus = natsOptions_SetRetryOnFailedConnect(opts, !c.failIfUnreachable, c.failIfUnreachable ? nil : { _, closure in
                ConnectionCallbacks.from(closure)?.emit(.connected)
            }, box)
        }
        guard setupStatus == NATS_OK else {
            Unmanaged<ConnectionCallbacks>.fromOpaque(box).release()
            throw NATSError.make(setupStatus, "NATS options")
        }
        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, opts)
        if status == NATS_OK || status == NATS_NOT_YET_CONNECTED, let connection {
            return connection
        }
        // No connection object was returned, so libnats has no callback to make: give back its reference.
        let error = NATSError.make(status, "connect to \(c.servers.joined(separator: ","))")
        Unmanaged<ConnectionCallbacks>.fromOpaque(box).release()
        throw error
    }

    public var status: NATSConnectionStatus {
        switch natsConnection_Status(handle) {
        case NATS_CONN_STATUS_CONNECTED: .connected
        case NATS_CONN_STATUS_CONNECTING: .connecting
        case NATS_CONN_STATUS_RECONNECTING: .reconnecting
        case NATS_CONN_STATUS_CLOSED: .closed
        case NATS_CONN_STATUS_DRAINING_SUBS, NATS_CONN_STATUS_DRAINING_PUBS: .draining
        default: .disconnected
        }
    }

    /// Threads of libnats's shared delivery pool (used by subscriptions when `useGlobalMessageDelivery`):
    /// set it before subscribing many feeds in one process (e.g. a propagation bench with 1,000 simulated agents).
    public static func setMessageDeliveryPoolSize(_ threads: Int) throws {
        try NATSError.check(nats_SetMessageDeliveryPoolSize(Int32(threads)), "delivery pool size")
    }

    public var isConnected: Bool { natsConnection_Status(handle) == NATS_CONN_STATUS_CONNECTED }

    /// The libnats version this process runs with (for reports).
    public static var libraryVersion: String { String(cString: nats_GetVersion()) }

    /// A new stream of this connection's state changes from now on (each caller gets its own). It ends after `.closed`.
    public func events(bufferingNewest limit: Int = 64) -> AsyncStream<NATSConnectionEvent> {
        callbacks.makeStream(limit: limit)
    }

    /// Round trip to the server: everything published before has been processed by it.
    public func flush(timeout: Duration = .seconds(2)) async throws {
        try await NATSBlocking.run { () throws in
            try NATSError.check(natsConnection_FlushTimeout(self.handle, timeout.milliseconds), "flush")
        }
    }

    /// Core NATS publish (no JetStream acknowledgement). Fails at once while disconnected.
    public func publish(_ subject: String, reply: String? = nil, payload: [UInt8], headers: [String: String] = [:]) throws(NATSError) {
        var message: OpaquePointer?
        let created = payload.withUnsafeBufferPointer { p in
            natsMsg_Create(&message, subject, reply, p.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, Int32(p.count))
        }
        try NATSError.check(created, "message for \(subject)")
        guard let message else { throw .library(status: "no memory", detail: "natsMsg_Create") }
        defer { natsMsg_Destroy(message) }
        for (key, value) in headers.sorted(by: { $0.key < $1.key }) {
            try NATSError.check(natsMsgHeader_Set(message, key, value), "header \(key)")
        }
        try NATSError.check(natsConnection_PublishMsg(handle, message), "publish to \(subject)")
    }

    /// Core request/reply.
    public func request(_ subject: String, payload: [UInt8] = [], timeout: Duration = .seconds(2)) async throws -> NATSMessage {
        try await NATSBlocking.run { () throws -> NATSMessage in
            var reply: OpaquePointer?
            let status = payload.withUnsafeBufferPointer { p in
                natsConnection_Request(&reply, self.handle, subject, p.baseAddress.map { UnsafeRawPointer($0) }, Int32(p.count), timeout.milliseconds)
            }
            try NATSError.check(status, "request \(subject)")
            guard let reply else { throw NATSError.invalidResponse("no reply to \(subject)") }
            defer { natsMsg_Destroy(reply) }
            return NATSMessage(copying: reply)
        }
    }

    /// Core request/reply that blocks the calling thread: only for callers already on a Dispatch thread
    /// (e.g. inside a PostgreSQL session), never on Swift's cooperative pool.
    public func requestBlocking(_ subject: String, payload: [UInt8] = [], timeout: Duration = .seconds(2)) throws -> NATSMessage {
        var reply: OpaquePointer?
        let status = payload.withUnsafeBufferPointer { p in
            natsConnection_Request(&reply, handle, subject, p.baseAddress.map { UnsafeRawPointer($0) }, Int32(p.count), timeout.milliseconds)
        }
        try NATSError.check(status, "request \(subject)")
        guard let reply else { throw NATSError.invalidResponse("no reply to \(subject)") }
        defer { natsMsg_Destroy(reply) }
        return NATSMessage(copying: reply)
    }

    /// Subscribes (core NATS) to `subject`; messages arrive in `NATSSubscription.messages`.
    /// libnats re-sends the subscription after every reconnect.
    public func subscribe(_ subject: String, bufferingNewest limit: Int = 1_024) throws(NATSError) -> NATSSubscription {
        try NATSSubscription(connection: self, subject: subject, limit: limit)
    }

    /// Subscribes (core NATS) to `subject` in queue group `queue`: each message goes to one member of the group,
    /// so several controllers sharing the work each see a message once per deployment, not once per controller.
    public func queueSubscribe(_ subject: String, queue: String, bufferingNewest limit: Int = 1_024) throws(NATSError) -> NATSSubscription {
        try NATSSubscription(connection: self, subject: subject, queue: queue, limit: limit)
    }

    /// Subscribes (core NATS) to `subject` and calls `handler` with each message's subject and payload on libnats's
    /// delivery thread (no copy, no task, no stream): for many lightweight subscribers in one process, such as the
    /// propagation bench's simulated agents. The buffers are valid only during the call; the handler must not block.
    public func subscribe(_ subject: String, handler: @escaping NATSCallbackSubscription.Handler) throws(NATSError) -> NATSCallbackSubscription {
        try NATSCallbackSubscription(connection: self, subject: subject, handler: handler)
    }

    /// Closes the connection (idempotent). Subscriptions end; `events()` streams get `.closed` and finish.
    public func close() async {
        callbacks.closing()
        _ = try? await NATSBlocking.run { natsConnection_Close(self.handle) }
    }
}

/// The Swift side of a connection's libnats callbacks.
final class ConnectionCallbacks: Sendable {
    private struct Listeners: ~Copyable {
        var next = 0
        var continuations: [Int: AsyncStream<NATSConnectionEvent>.Continuation] = [:]
        var finished = false
        /// `close()` was called: the disconnect libnats reports while closing is not news.
        var closing = false
    }
    private let listeners = Mutex(Listeners())
    let name: String
    let logger: Logger
    /// In-memory user credentials, read by libnats's JWT and signature callbacks at every connect.
    let userCredentials: NATSUserCredentials?

    init(name: String, logger: Logger, userCredentials: NATSUserCredentials? = nil) {
        self.userCredentials = userCredentials
        self.name = name
        self.logger = logger
    }

    static func from(_ closure: UnsafeMutableRawPointer?) -> ConnectionCallbacks? {
        closure.map { Unmanaged<ConnectionCallbacks>.fromOpaque($0).takeUnretainedValue() }
    }

    func closing() {
        listeners.withLock { $0.closing = true }
    }

    /// Called on libnats's callback thread.
    func emit(_ event: NATSConnectionEvent) {
        if event == .disconnected, listeners.withLock({ $0.closing }) { return }
        switch event {
        case .connected: logger.notice("NATS connected", metadata: ["connection": "\(name)"])
        case .disconnected: logger.warning("NATS disconnected; reconnecting in the background", metadata: ["connection": "\(name)"])
        case .reconnected: logger.notice("NATS reconnected", metadata: ["connection": "\(name)"])
        case .closed:
            if listeners.withLock({ $0.closing }) {
                logger.debug("NATS connection closed", metadata: ["connection": "\(name)"])
            } else {
                logger.error("NATS connection closed for good (libnats stopped reconnecting, e.g. after the server refused its credentials twice)",
                             metadata: ["connection": "\(name)"])
            }
        case let .error(text): logger.warning("NATS asynchronous error", metadata: ["connection": "\(name)", "error": "\(text)"])
        }
        let targets = listeners.withLock { Array($0.continuations.values) }
        for continuation in targets { continuation.yield(event) }
    }

    func finish() {
        let targets = listeners.withLock { state in
            state.finished = true
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in targets { continuation.finish() }
    }

    func makeStream(limit: Int) -> AsyncStream<NATSConnectionEvent> {
        let (stream, continuation) = AsyncStream<NATSConnectionEvent>.makeStream(bufferingPolicy: .bufferingNewest(limit))
        let id: Int? = listeners.withLock { state in
            if state.finished { return nil }
            state.next += 1
            state.continuations[state.next] = continuation
            return state.next
        }
        guard let id else {
            continuation.yield(.closed)
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.listeners.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }
}

/// A received message, copied out of libnats (the `natsMsg` is destroyed right after).
public struct NATSMessage: Sendable, Equatable {
    public var subject: String
    public var reply: String?
    public var payload: [UInt8]
    public var headers: [String: [String]]
    /// The server's status for a status-only message (e.g. "404" for direct get of a missing message, "503" no responders).
    public var status: String?

    public init(subject: String, reply: String? = nil, payload: [UInt8], headers: [String: [String]] = [:], status: String? = nil) {
        self.subject = subject
        self.reply = reply
        self.payload = payload
        self.headers = headers
        self.status = status
    }

    /// The first value of a header.
    public func header(_ name: String) -> String? { headers[name]?.first }

    init(copying msg: OpaquePointer) {
        subject = natsMsg_GetSubject(msg).map { String(cString: $0) } ?? ""
        reply = natsMsg_GetReply(msg).map { String(cString: $0) }
        let length = Int(natsMsg_GetDataLength(msg))
        if length > 0, let data = natsMsg_GetData(msg) {
            payload = data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
        } else {
            payload = []
        }
        var headers: [String: [String]] = [:]
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var keyCount: Int32 = 0
        if natsMsgHeader_Keys(msg, &keys, &keyCount) == NATS_OK, let keys {
            for k in 0..<Int(keyCount) {
                guard let key = keys[k] else { continue }
                var values: UnsafeMutablePointer<UnsafePointer<CChar>?>?
                var valueCount: Int32 = 0
                if natsMsgHeader_Values(msg, key, &values, &valueCount) == NATS_OK, let values {
                    headers[String(cString: key)] = (0..<Int(valueCount)).compactMap { values[$0].map { String(cString: $0) } }
                    free(values)
                }
            }
            free(keys)
        }
        self.headers = headers
        var statusValue: UnsafePointer<CChar>?
        if natsMsgHeader_Get(msg, "Status", &statusValue) == NATS_OK, let statusValue {
            status = String(cString: statusValue)
        } else if natsMsg_IsNoResponders(msg) {
            status = "503"
        } else {
            status = nil
        }
    }
}

/// A libnats object pointer handed from the Dispatch thread that created it to its owner.
// Why @unchecked Sendable is safe: it only carries the pointer across that one hop; the owner (a final class with
// an immutable handle) is the only user, and the libnats objects wrapped here are thread-safe.
struct NATSHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// Runs blocking libnats calls on Dispatch threads, off Swift's cooperative pool.
enum NATSBlocking {
    static let queue = DispatchQueue(label: "routeplane.nats.blocking", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

extension Duration {
    /// Whole milliseconds (at least 1 for a positive duration), as libnats takes them.
    var milliseconds: Int64 {
        let ms = components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
        return ms == 0 && self > .zero ? 1 : ms
    }
}
