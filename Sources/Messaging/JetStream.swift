import CNATS
import Foundation
import JSONKit
import Synchronization

/// The stream that keeps every peer's current view.
public struct StreamSpec: Sendable, Equatable {
    public var name: String
    public var subjects: [String]
    /// 1: the stream keeps only the newest message of each subject (each peer's current view).
    public var maxMessagesPerSubject: Int64
    /// JetStream drops a message whose `Nats-Msg-Id` it saw within this window.
    public var duplicateWindow: Duration
    /// Lets readers use direct get (`$JS.API.DIRECT.GET.<stream>.<subject>`), answered by any replica.
    public var allowDirect: Bool
    public var memoryStorage: Bool
    public var replicas: Int

    public init(name: String, subjects: [String], maxMessagesPerSubject: Int64 = 1, duplicateWindow: Duration = .seconds(120),
                allowDirect: Bool = true, memoryStorage: Bool = false, replicas: Int = 1) {
        self.name = name
        self.subjects = subjects
        self.maxMessagesPerSubject = maxMessagesPerSubject
        self.duplicateWindow = duplicateWindow
        self.allowDirect = allowDirect
        self.memoryStorage = memoryStorage
        self.replicas = replicas
    }

    /// `ROUTEPLANE_VIEWS` on `routeplane.*.peer.*.routes`, last message per subject, 2-minute duplicate window.
    public static let views = StreamSpec(name: "ROUTEPLANE_VIEWS", subjects: [ViewSubjects.wildcard])
}

/// What the server says about a stream.
public struct StreamState: Sendable, Equatable {
    public var name: String
    public var messages: UInt64
    public var bytes: UInt64
    public var firstSequence: UInt64
    /// Sequence of the last message ever stored: the number of messages stored so far (duplicates are not stored).
    public var lastSequence: UInt64
    public var subjects: Int64
    public var maxMessagesPerSubject: Int64
    public var duplicateWindow: Duration
    public var allowDirect: Bool
}

/// A message read back from a stream.
public struct StoredMessage: Sendable, Equatable {
    public var subject: String
    public var sequence: UInt64
    public var payload: [UInt8]
    public var messageID: String?
}

/// JetStream management and reads over one connection (`jsCtx`).
public final class JetStream: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `handle` (a jsCtx) is immutable and destroyed in deinit; the js_* calls
    // used here are thread-safe in libnats (each is a request on the connection). The connection outlives it.
    let handle: OpaquePointer
    public let connection: NATSConnection
    let requestTimeout: Duration

    public init(connection: NATSConnection, requestTimeout: Duration = .seconds(5)) throws {
        var options = jsOptions()
        try NATSError.check(jsOptions_Init(&options), "jsOptions_Init")
        options.Wait = requestTimeout.milliseconds
        var context: OpaquePointer?
        try NATSError.check(natsConnection_JetStream(&context, connection.handle, &options), "JetStream context")
        guard let context else { throw NATSError.library(status: "no memory", detail: "natsConnection_JetStream") }
        self.handle = context
        self.connection = connection
        self.requestTimeout = requestTimeout
    }

    deinit { jsCtx_Destroy(handle) }

    /// Creates the stream, or brings an existing one to `spec` (idempotent; safe from several controllers at once).
    @discardableResult
    public func ensureStream(_ spec: StreamSpec) async throws -> StreamState {
        try await NATSBlocking.run { try self.ensureStreamBlocking(spec) }
    }

    func ensureStreamBlocking(_ spec: StreamSpec) throws -> StreamState {
        var config = jsStreamConfig()
        try NATSError.check(jsStreamConfig_Init(&config), "jsStreamConfig_Init")
        let name = strdup(spec.name)
        defer { free(name) }
        let subjects = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(spec.subjects.count, 1))
        let copies = spec.subjects.map { strdup($0) }
        defer {
            copies.forEach { free($0) }
            subjects.deallocate()
        }
        for (i, copy) in copies.enumerated() { subjects[i] = UnsafePointer(copy) }
        config.Name = UnsafePointer(name)
        config.Subjects = subjects
        config.SubjectsLen = Int32(spec.subjects.count)
        config.MaxMsgsPerSubject = spec.maxMessagesPerSubject
        config.Duplicates = spec.duplicateWindow.nanoseconds
        config.AllowDirect = spec.allowDirect
        config.Storage = spec.memoryStorage ? js_MemoryStorage : js_FileStorage
        config.Replicas = Int64(spec.replicas)
        config.Retention = js_LimitsPolicy
        config.Discard = js_DiscardOld

        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(rawValue: 0)
        var status = js_AddStream(&info, handle, &config, nil, &code)
        if status != NATS_OK && code == JSStreamNameExistErr {
            // Exists with another configuration: bring it to ours.
            code = jsErrCode(rawValue: 0)
            status = js_UpdateStream(&info, handle, &config, nil, &code)
        }
        try NATSError.check(status, "ensure stream \(spec.name)", jsCode: code)
        guard let info else { throw NATSError.invalidResponse("no stream info for \(spec.name)") }
        defer { jsStreamInfo_Destroy(info) }
        return Self.state(info, name: spec.name)
    }

    /// Deletes a stream (administration and tests). Deleting a missing stream is not an error.
    public func deleteStream(_ name: String) async throws {
        try await NATSBlocking.run {
            var code = jsErrCode(rawValue: 0)
            let status = js_DeleteStream(self.handle, name, nil, &code)
            if status == NATS_NOT_FOUND || code == JSStreamNotFoundErr { return }
            try NATSError.check(status, "delete stream \(name)", jsCode: code)
        }
    }

    /// The stream's state, or nil if it does not exist.
    public func streamState(_ name: String) async throws -> StreamState? {
        try await NATSBlocking.run {
            var info: UnsafeMutablePointer<jsStreamInfo>?
            var code = jsErrCode(rawValue: 0)
            let status = js_GetStreamInfo(&info, self.handle, name, nil, &code)
            if status == NATS_NOT_FOUND || code == JSStreamNotFoundErr { return nil }
            try NATSError.check(status, "stream info \(name)", jsCode: code)
            guard let info else { throw NATSError.invalidResponse("no stream info for \(name)") }
            defer { jsStreamInfo_Destroy(info) }
            return Self.state(info, name: name)
        }
    }

    private static func state(_ info: UnsafeMutablePointer<jsStreamInfo>, name: String) -> StreamState {
        let s = info.pointee.State
        let config = info.pointee.Config?.pointee
        return StreamState(name: name, messages: s.Msgs, bytes: s.Bytes, firstSequence: s.FirstSeq, lastSequence: s.LastSeq,
                           subjects: s.NumSubjects, maxMessagesPerSubject: config?.MaxMsgsPerSubject ?? 0,
                           duplicateWindow: .nanoseconds(config?.Duplicates ?? 0), allowDirect: config?.AllowDirect ?? false)
    }

    /// The newest message on `subject` (nil when there is none), by direct get with the subject in the API subject
    /// (`$JS.API.DIRECT.GET.<stream>.<subject>`), so a per-agent permission can allow exactly its own subject.
    public func lastMessage(stream: String, subject: String, timeout: Duration? = nil) async throws -> StoredMessage? {
        let reply = try await connection.request("$JS.API.DIRECT.GET.\(stream).\(subject)", timeout: timeout ?? requestTimeout)
        return try Self.storedMessage(from: reply, subject: subject)
    }

    static func storedMessage(from reply: NATSMessage, subject: String) throws -> StoredMessage? {
        if let sequence = reply.header("Nats-Sequence").flatMap(UInt64.init) {
            return StoredMessage(subject: reply.header("Nats-Subject") ?? subject, sequence: sequence, payload: reply.payload,
                                 messageID: reply.header("Nats-Msg-Id"))
        }
        switch reply.status {
        case "404": return nil
        case "503": throw NATSError.noResponders("direct get \(subject): no stream answered")
        default:
            throw NATSError.invalidResponse("direct get \(subject): status \(reply.status ?? "none") \(reply.header("Description") ?? "")")
        }
    }
}

/// One message to publish to JetStream.
public struct OutgoingMessage: Sendable, Equatable {
    public var subject: String
    public var messageID: String
    public var payload: [UInt8]

    public init(subject: String, messageID: String, payload: [UInt8]) {
        self.subject = subject
        self.messageID = messageID
        self.payload = payload
    }
}

/// The outcome of one publish.
public enum PublishResult: Sendable, Equatable {
    /// Stored at `sequence`; `duplicate`: the server had this message id already (nothing new stored).
    case stored(sequence: UInt64, duplicate: Bool)
    case failed(PublishFailure)

    public var isStored: Bool { if case .stored = self { true } else { false } }
}

public enum PublishFailure: Sendable, Equatable, CustomStringConvertible {
    /// Not connected when publishing, or the connection dropped while waiting: maybe stored, maybe not.
    case notConnected(String)
    /// No acknowledgement in time: maybe stored, maybe not.
    case timeout
    /// No stream listens on the subject (deleted, or a server with a fresh store).
    case noStream
    /// JetStream refused it (e.g. 10060 wrong expected stream, message too large).
    case rejected(code: Int, description: String)
    case invalidResponse(String)

    public var description: String {
        switch self {
        case let .notConnected(why): "not connected (\(why))"
        case .timeout: "no acknowledgement in time"
        case .noStream: "no stream answered"
        case let .rejected(code, description): "rejected \(code): \(description)"
        case let .invalidResponse(what): "unexpected acknowledgement: \(what)"
        }
    }
}

/// Publishes batches to JetStream and waits for every acknowledgement, pipelined: all messages of a batch go
/// out, then the acks are collected from a private inbox subscription (`<inbox>.<batch>.<index>`), so a batch
/// costs about one round trip instead of one per message. A synchronous subscription is used (no callback
/// object whose lifetime would have to be managed); acks for an earlier, abandoned batch are recognised by the
/// batch number and dropped. Each message carries `Nats-Msg-Id` and `Nats-Expected-Stream`.
public final class JetStreamPublisher: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `subscription` is immutable, destroyed in deinit, and used only inside
    // `batchLock`, so one batch at a time reads the inbox; libnats publish calls are thread-safe.
    private let connection: NATSConnection
    private let subscription: OpaquePointer
    private let inbox: String
    public let stream: String
    private let batchLock = Mutex<UInt64>(0)

    public init(connection: NATSConnection, stream: String) throws {
        var inboxPointer: UnsafeMutablePointer<CChar>?
        try NATSError.check(natsInbox_Create(&inboxPointer), "inbox")
        guard let inboxPointer else { throw NATSError.library(status: "no memory", detail: "natsInbox_Create") }
        let inbox = String(cString: inboxPointer)
        natsInbox_Destroy(inboxPointer)
        var sub: OpaquePointer?
        try NATSError.check(natsConnection_SubscribeSync(&sub, connection.handle, inbox + ".*.*"), "ack inbox subscription")
        guard let sub else { throw NATSError.library(status: "no memory", detail: "natsConnection_SubscribeSync") }
        // Acks must never be dropped as a slow consumer: allow a large backlog.
        _ = natsSubscription_SetPendingLimits(sub, 1_000_000, 1 << 30)
        self.connection = connection
        self.subscription = sub
        self.inbox = inbox
        self.stream = stream
    }

    deinit {
        _ = natsSubscription_Unsubscribe(subscription)
        natsSubscription_Destroy(subscription)
    }

    /// Publishes `messages` and waits up to `timeout` for their acknowledgements. Results are in input order.
    public func publish(_ messages: [OutgoingMessage], timeout: Duration = .seconds(5)) async -> [PublishResult] {
        (try? await NATSBlocking.run { self.publishBlocking(messages, timeout: timeout) })
            ?? Array(repeating: .failed(.invalidResponse("publish did not run")), count: messages.count)
    }

    /// The same, blocking the calling thread (the relay calls it on its database connection's thread, inside the
    /// claim transaction). Never call it on a Swift cooperative thread.
    public func publishBlocking(_ messages: [OutgoingMessage], timeout: Duration) -> [PublishResult] {
        guard !messages.isEmpty else { return [] }
        return batchLock.withLock { batchNumber in
            batchNumber += 1
            let batch = batchNumber
            var results = [PublishResult?](repeating: nil, count: messages.count)
            var outstanding = 0
            var firstFailure: Int?
            for (index, message) in messages.enumerated() {
                if let firstFailure {
                    results[index] = results[firstFailure]
                    continue
                }
                if let failure = send(message, reply: "\(inbox).\(batch).\(index)") {
                    results[index] = .failed(failure)
                    firstFailure = index
                } else {
                    outstanding += 1
                }
            }
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            while outstanding > 0 {
                let now = clock.now
                if now >= deadline { break }
                // Short slices, so a dropped connection fails the batch at once instead of at the deadline.
                let slice = min(deadline - now, .milliseconds(100))
                var reply: OpaquePointer?
                let status = natsSubscription_NextMsg(&reply, subscription, slice.milliseconds)
                if status == NATS_TIMEOUT {
                    if !connection.isConnected { break }
                    continue
                }
                // A "no responders" status message: libnats's NextMsg returns NATS_NO_RESPONDERS and drops the message,
                // so which publish it answered is unknown. All messages of a batch go to one stream, so no stream
                // listening for one means the stream is gone: fail every outstanding one.
                if status == NATS_NO_RESPONDERS && reply == nil {
                    for i in results.indices where results[i] == nil { results[i] = .failed(.noStream) }
                    outstanding = 0
                    break
                }
                guard status == NATS_OK || status == NATS_NO_RESPONDERS, let reply else { break }
                defer { natsMsg_Destroy(reply) }
                let parts = String(cString: natsMsg_GetSubject(reply)).split(separator: ".")
                guard parts.count >= 2, UInt64(parts[parts.count - 2]) == batch, let index = Int(parts[parts.count - 1]),
                      index >= 0, index < results.count, results[index] == nil else { continue }
                results[index] = status == NATS_NO_RESPONDERS ? .failed(.noStream) : Self.parseAck(reply)
                outstanding -= 1
            }
            let missing: PublishResult = connection.isConnected ? .failed(.timeout) : .failed(.notConnected("connection lost before the acknowledgement"))
            return results.map { $0 ?? missing }
        }
    }

    /// Sends one message; nil on success.
    private func send(_ message: OutgoingMessage, reply: String) -> PublishFailure? {
        var msg: OpaquePointer?
        let created = message.payload.withUnsafeBufferPointer { p in
            natsMsg_Create(&msg, message.subject, reply, p.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, Int32(p.count))
        }
        guard created == NATS_OK, let msg else { return .invalidResponse(NATSError.make(created, "message").description) }
        defer { natsMsg_Destroy(msg) }
        var status = natsMsgHeader_Set(msg, "Nats-Msg-Id", message.messageID)
        if status == NATS_OK { status = natsMsgHeader_Set(msg, "Nats-Expected-Stream", stream) }
        if status == NATS_OK { status = natsConnection_PublishMsg(connection.handle, msg) }
        guard status == NATS_OK else {
            let error = NATSError.make(status, "publish \(message.subject)")
            if case .notConnected = error { return .notConnected(error.description) }
            return .invalidResponse(error.description)
        }
        return nil
    }

    private struct Ack: Decodable {
        struct APIError: Decodable {
            var code: Int?
            var err_code: Int?
            var description: String?
        }
        var stream: String?
        var seq: UInt64?
        var duplicate: Bool?
        var error: APIError?
    }

    /// The acknowledgement in a libnats message. The usual one (`{"stream":…,"seq":N}` plus `"duplicate":true`,
    /// no headers) is read in place; anything else (a status header, an error, an unexpected shape) goes through
    /// the general path below. Foundation's JSONDecoder costed ~30 µs per ack, a tenth of the relay's CPU at 10,000 acks.
    static func parseAck(_ reply: OpaquePointer) -> PublishResult {
        var statusValue: UnsafePointer<CChar>?
        let length = Int(natsMsg_GetDataLength(reply))
        if natsMsgHeader_Get(reply, "Status", &statusValue) != NATS_OK, length > 0, let data = natsMsg_GetData(reply) {
            let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: length)
            if let fast = quickAck(Array(bytes)) { return fast }
        }
        return parseAck(NATSMessage(copying: reply))
    }

    /// `{"stream":"…","seq":N[,"duplicate":true|false][,"domain":"…"]}` → stored; nil for anything else.
    static func quickAck(_ bytes: [UInt8]) -> PublishResult? {
        guard let fields = try? JSONReader.members(of: bytes, maxDepth: 257) else { return nil }
        var sequence: UInt64?
        var duplicate = false
        for (key, range) in fields {
            switch key {
            case "seq":
                guard let value = try? JSONReader.read(bytes[range], { (r: inout JSONReader) throws(JSONReadError) in try r.readIntegerLiteral() }), value >= 0 else {
                    return nil
                }
                sequence = UInt64(value)
            case "duplicate":
                let token = bytes[range]
                if token.elementsEqual("true".utf8) { duplicate = true } else if !token.elementsEqual("false".utf8) { return nil }
            case "stream", "domain":
                continue
            default:
                return nil
            }
        }
        return sequence.map { .stored(sequence: $0, duplicate: duplicate) }
    }

    static func parseAck(_ reply: NATSMessage) -> PublishResult {
        if reply.status == "503" { return .failed(.noStream) }
        guard let ack = try? JSONDecoder().decode(Ack.self, from: Data(reply.payload)) else {
            return .failed(.invalidResponse(String(decoding: reply.payload.prefix(200), as: UTF8.self)))
        }
        if let error = ack.error {
            return .failed(.rejected(code: error.err_code ?? error.code ?? 0, description: error.description ?? ""))
        }
        guard let seq = ack.seq else { return .failed(.invalidResponse(String(decoding: reply.payload.prefix(200), as: UTF8.self))) }
        return .stored(sequence: seq, duplicate: ack.duplicate ?? false)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
