import Foundation
import CNATS

/// What can go wrong talking to NATS.
public enum NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No server connection right now (connecting, reconnecting, or closed). libnats keeps trying by itself.
    case notConnected(String)
    /// No answer in time.
    case timeout(String)
    /// Nobody listens on the subject (for a JetStream API call or publish: no such stream / JetStream off).
    case noResponders(String)
    /// JetStream answered with an API error (`err_code`, e.g. 10059 stream not found).
    case jetStream(code: Int, description: String)
    /// Any other libnats failure.
    case library(status: String, detail: String)
    /// A bad argument (e.g. an id that cannot be a subject token).
    case invalidArgument(String)
    /// A response this code does not understand.
    case invalidResponse(String)

    public var description: String {
        switch self {
        case let .notConnected(what): "NATS not connected: \(what)"
        case let .timeout(what): "NATS timeout: \(what)"
        case let .noResponders(what): "NATS no responders: \(what)"
        case let .jetStream(code, description): "JetStream error \(code): \(description)"
        case let .library(status, detail): "libnats \(status): \(detail)"
        case let .invalidArgument(what): "invalid argument: \(what)"
        case let .invalidResponse(what): "unexpected NATS response: \(what)"
        }
    }

    /// True when the error means "NATS is not reachable now" (retry later), as opposed to a refusal.
    public var isUnavailable: Bool {
        switch self {
        case .notConnected, .timeout: true
        default: false
        }
    }

    /// True when the server refused this connection's credentials (unknown, revoked or expired user JWT, bad
    /// signature): renewing them may help, retrying with the same ones will not.
    public var isCredentialRefusal: Bool {
        let text = description
        return text.localizedCaseInsensitiveContains("authoriz") || text.localizedCaseInsensitiveContains("authentication")
            || text.localizedCaseInsensitiveContains("expired")
    }

    /// Maps a libnats status to an error; call on the thread that made the call (libnats keeps the last
    /// error text per thread). `jsCode` is the JetStream error code a js_* call reported, if any.
    static func check(_ status: natsStatus, _ what: @autoclosure () -> String, jsCode: jsErrCode = jsErrCode(rawValue: 0)) throws(NATSError) {
        guard status != NATS_OK else { return }
        throw make(status, what(), jsCode: jsCode)
    }

    static func make(_ status: natsStatus, _ what: String, jsCode: jsErrCode = jsErrCode(rawValue: 0)) -> NATSError {
        let text = String(cString: natsStatus_GetText(status))
        var detail = what
        if let last = nats_GetLastError(nil), last.pointee != 0 {
            let message = String(cString: last)
            if message != text { detail += ": \(message)" }
        }
        if jsCode.rawValue != 0 { return .jetStream(code: Int(jsCode.rawValue), description: detail) }
        switch status {
        case NATS_TIMEOUT: return .timeout(detail)
        case NATS_NO_RESPONDERS: return .noResponders(detail)
        case NATS_NOT_YET_CONNECTED, NATS_CONNECTION_CLOSED, NATS_CONNECTION_DISCONNECTED, NATS_INSUFFICIENT_BUFFER,
             NATS_NO_SERVER, NATS_CONNECTION_AUTH_FAILED, NATS_STALE_CONNECTION:
            return .notConnected("\(text) (\(detail))")
        default:
            return .library(status: text, detail: detail)
        }
    }
}
