import Foundation

/// The small status message an agent publishes (core NATS, no JetStream) every few seconds and after each
/// apply, on `routeplane.<tenant>.peer.<peer>.status`; the controller subscribes to `routeplane.*.peer.*.status`
/// and records connected / last seen / applied version. JSON with sorted keys, `"status":1` as its format version.
public struct PeerStatusMessage: Sendable, Equatable, Codable {
    public static let currentVersion = 1

    /// Health of one candidate routing peer as the agent sees it.
    public struct Candidate: Sendable, Equatable, Codable {
        public var reachable: Bool
        public var direct: Bool
        public var latencyMillis: Double?

        public init(reachable: Bool, direct: Bool, latencyMillis: Double? = nil) {
            self.reachable = reachable
            self.direct = direct
            self.latencyMillis = latencyMillis
        }

        enum CodingKeys: String, CodingKey {
            case reachable, direct
            case latencyMillis = "latency_ms"
        }
    }

    public var status: Int
    public var tenant: String
    public var peer: String
    /// Version of the view the agent applied (0: none yet).
    public var appliedVersion: Int64
    /// Network id → routing peer the agent chose for it.
    public var chosen: [String: String]
    /// Routing peer id → health.
    public var candidates: [String: Candidate]
    /// Messages the agent ignored (older or duplicate versions) and rejected (tampered, unparseable) so far.
    public var ignored: Int
    public var rejected: Int
    /// Agent clock, Unix milliseconds.
    public var sentAtMillis: Int64

    public init(tenant: String, peer: String, appliedVersion: Int64, chosen: [String: String] = [:], candidates: [String: Candidate] = [:],
                ignored: Int = 0, rejected: Int = 0, sentAtMillis: Int64) {
        self.status = Self.currentVersion
        self.tenant = tenant
        self.peer = peer
        self.appliedVersion = appliedVersion
        self.chosen = chosen
        self.candidates = candidates
        self.ignored = ignored
        self.rejected = rejected
        self.sentAtMillis = sentAtMillis
    }

    enum CodingKeys: String, CodingKey {
        case status, tenant, peer, chosen, candidates, ignored, rejected
        case appliedVersion = "applied_version"
        case sentAtMillis = "sent_at"
    }

    public var subject: String { get throws(NATSError) { try ViewSubjects.statusSubject(tenant: tenant, peer: peer) } }

    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings, integers and dictionaries of them cannot fail.
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// Decodes a status message; with `subject` given, its tenant and peer must be the subject's (an agent can
    /// only publish on its own subject, so this is what ties the message to an identity).
    public static func decode(_ bytes: [UInt8], subject: String? = nil) throws -> PeerStatusMessage {
        struct Version: Decodable { var status: Int }
        let version: Version
        do {
            version = try JSONDecoder().decode(Version.self, from: Data(bytes))
        } catch {
            throw ViewEnvelopeError.unparseable("status message: \(error)")
        }
        guard version.status == currentVersion else { throw ViewEnvelopeError.unsupportedEnvelopeVersion(version.status) }
        let message: PeerStatusMessage
        do {
            message = try JSONDecoder().decode(PeerStatusMessage.self, from: Data(bytes))
        } catch {
            throw ViewEnvelopeError.unparseable("status message: \(error)")
        }
        if let subject, (try? message.subject) != subject {
            throw ViewEnvelopeError.wrongRecipient(tenant: message.tenant, peer: message.peer)
        }
        return message
    }
}

extension ViewSubjects {
    /// Every peer's status subject (what the controller subscribes to).
    public static let statusWildcard = "routeplane.*.peer.*.status"

    public static func statusSubject(tenant: String, peer: String) throws(NATSError) -> String {
        guard isValidToken(tenant) else { throw .invalidArgument("tenant id \(tenant.debugDescription) cannot be a subject token") }
        guard isValidToken(peer) else { throw .invalidArgument("peer id \(peer.debugDescription) cannot be a subject token") }
        return "\(prefix).\(tenant).peer.\(peer).status"
    }
}
