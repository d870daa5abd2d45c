import Foundation
import CNATS
import Synchronization

/// A libnats subscription handle and the connection it needs: unsubscribes once (idempotent) and destroys the handle
/// when the last reference goes. Both subscription kinds below hold one.
final class SubscriptionHandle: @unchecked Sendable {
    // Why @unchecked Sendable is safe: `pointer` is immutable and destroyed only in deinit; libnats subscription calls
    // are thread-safe; `unsubscribed` is a Mutex.
    let pointer: OpaquePointer
    private let unsubscribed = Mutex(false)
    // Keeps the connection alive as long as the subscription (not captured by any callback).
    private let connection: NATSConnection

    init(_ pointer: OpaquePointer, connection: NATSConnection) {
        self.pointer = pointer
        self.connection = connection
    }

    func unsubscribe() {
        let first = unsubscribed.withLock { done in
            defer { done = true }
            return !done
        }
        if first { _ = natsSubscription_Unsubscribe(pointer) }
    }

    deinit {
        unsubscribe()
        natsSubscription_Destroy(pointer)
    }
}

/// An async core-NATS subscription. Its libnats callback copies each message and yields it to `messages`.
/// The callback object is retained for libnats and released by the subscription's on-complete callback,
/// which libnats calls once the subscription is closed and its message handler has returned for the last time.
public final class NATSSubscription: Sendable {
    let handle: SubscriptionHandle
    public let subject: String
    public let messages: AsyncStream<NATSMessage>

    final class Callbacks: Sendable {
        let continuation: AsyncStream<NATSMessage>.Continuation
        init(_ continuation: AsyncStream<NATSMessage>.Continuation) { self.continuation = continuation }
    }

    init(connection: NATSConnection, subject: String, queue: String? = nil, limit: Int) throws(NATSError) {
        let (stream, continuation) = AsyncStream<NATSMessage>.makeStream(bufferingPolicy: .bufferingNewest(limit))
        let box = Unmanaged.passRetained(Callbacks(continuation)).toOpaque()
        var sub: OpaquePointer?
        let handler: natsMsgHandler = { _, _, msg, closure in
            guard let msg else { return }
            let message = NATSMessage(copying: msg)
            natsMsg_Destroy(msg)
            if let closure { Unmanaged<Callbacks>.fromOpaque(closure).takeUnretainedValue().continuation.yield(message) }
        }
        let status = if let queue {
            natsConnection_QueueSubscribe(&sub, connection.handle, subject, queue, handler, box)
        } else {
            natsConnection_Subscribe(&sub, connection.handle, subject, handler, box)
        }
        guard status == NATS_OK, let sub else {
            // No subscription exists, so no callback can come: give back libnats's reference.
            let error = NATSError.make(status, "subscribe \(subject)")
            Unmanaged<Callbacks>.fromOpaque(box).release()
            continuation.finish()
            throw error
        }
        let completion = natsSubscription_SetOnCompleteCB(sub, { closure in
            guard let closure else { return }
            let callbacks = Unmanaged<Callbacks>.fromOpaque(closure)
            callbacks.takeUnretainedValue().continuation.finish()
            callbacks.release()
        }, box)
        if completion != NATS_OK {
            // The subscription closed already (connection closed meanwhile). A message handler may still be running,
            // so the callback object is deliberately not released (a few bytes, once, instead of a use-after-free).
            continuation.finish()
        }
        self.handle = SubscriptionHandle(sub, connection: connection)
        self.subject = subject
        self.messages = stream
    }

    /// Stops the subscription (idempotent); `messages` finishes once libnats is done with it.
    public func unsubscribe() { handle.unsubscribe() }
}

/// A core-NATS subscription whose messages go straight to a callback (see `NATSConnection.subscribe(_:handler:)`).
/// Lifetime as `NATSSubscription`: libnats holds one retained reference to the handler box, released by the
/// subscription's on-complete callback.
public final class NATSCallbackSubscription: Sendable {
    public typealias Handler = @Sendable (_ subject: UnsafeBufferPointer<UInt8>, _ payload: UnsafeBufferPointer<UInt8>) -> Void
    let handle: SubscriptionHandle
    public let subject: String

    final class Box: Sendable {
        let handler: Handler
        init(_ handler: @escaping Handler) { self.handler = handler }
    }

    init(connection: NATSConnection, subject: String, handler: @escaping Handler) throws(NATSError) {
        let box = Unmanaged.passRetained(Box(handler)).toOpaque()
        var sub: OpaquePointer?
        let status = natsConnection_Subscribe(&sub, connection.handle, subject, { _, _, msg, closure in
            guard let msg else { return }
            defer { natsMsg_Destroy(msg) }
            guard let closure, let subjectPointer = natsMsg_GetSubject(msg) else { return }
            let subjectLength = strlen(subjectPointer)
            let length = Int(natsMsg_GetDataLength(msg))
            // C chars read as bytes (signed/unsigned variants of one integer type may alias).
            let subjectBytes = UnsafeRawPointer(subjectPointer).assumingMemoryBound(to: UInt8.self)
            let dataBytes = length > 0 ? natsMsg_GetData(msg).map { UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self) } : nil
            Unmanaged<Box>.fromOpaque(closure).takeUnretainedValue().handler(
                UnsafeBufferPointer(start: subjectBytes, count: subjectLength), UnsafeBufferPointer(start: dataBytes, count: dataBytes == nil ? 0 : length))
        }, box)
        guard status == NATS_OK, let sub else {
            let error = NATSError.make(status, "subscribe \(subject)")
            Unmanaged<Box>.fromOpaque(box).release()
            throw error
        }
        // If setting the completion fails the subscription closed already and a handler may still run: the box is
        // deliberately leaked (a few bytes, once) instead of risking a use-after-free.
        _ = natsSubscription_SetOnCompleteCB(sub, { closure in
            guard let closure else { return }
            Unmanaged<Box>.fromOpaque(closure).release()
        }, box)
        self.handle = SubscriptionHandle(sub, connection: connection)
        self.subject = subject
    }

    /// Stops the subscription (idempotent).
    public func unsubscribe() { handle.unsubscribe() }
}
