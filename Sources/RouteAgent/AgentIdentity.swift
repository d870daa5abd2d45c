import Foundation
import NATSAuth
import ViewTransport
import RouteModel

/// Who this agent is, from its enrollment; kept in the state folder (mode 0600) so a restart does not
/// enroll again.
public struct AgentIdentity: Codable, Sendable, Equatable {
    public var controller: String
    public var tenantID: String
    public var peerID: String
    public var ip: String
    /// The agent's own secret (`Authorization: Token …` for `/api/agent/view`).
    public var credential: String
    public var natsURL: String?
    /// Prefix of this agent's NATS reply subjects (its user may subscribe to no other inbox).
    public var natsInboxPrefix: String? = nil
    /// The controller's view signing public key (base64url), pinned at enrollment and moved on by endorsed key
    /// rotations. nil in identities written before views were signed: such an agent refuses every view.
    public var viewSigningKey: String?
    /// The deployment's mesh range as the controller said at enrollment (nil in identities written before it did).
    public var meshRange: String? = nil

    public init(controller: String, tenantID: String, peerID: String, ip: String, credential: String, natsURL: String?,
                viewSigningKey: String? = nil, natsInboxPrefix: String? = nil, meshRange: String? = nil) {
        self.meshRange = meshRange
        self.natsInboxPrefix = natsInboxPrefix
        self.controller = controller
        self.tenantID = tenantID
        self.peerID = peerID
        self.ip = ip
        self.credential = credential
        self.natsURL = natsURL
        self.viewSigningKey = viewSigningKey
    }

    enum CodingKeys: String, CodingKey {
        case controller, ip, credential
        case tenantID = "tenant_id"
        case peerID = "peer_id"
        case natsURL = "nats_url"
        case natsInboxPrefix = "nats_inbox_prefix"
        case viewSigningKey = "view_signing_key"
        case meshRange = "mesh_range"
    }
}

public enum AgentError: Error, CustomStringConvertible, Sendable {
    case enrollment(String)
    case stateFolder(String)
    case controller(String)
    /// The controller answered 429 to an enrollment (too many from this address or with this key): worth retrying later.
    case enrollmentRateLimited(String)
    case insecureTransport(String)

    public var description: String {
        switch self {
        case .enrollmentRateLimited(let m): "enrollment refused for now: \(m)"
        case .enrollment(let m): "enrollment failed: \(m)"
        case .stateFolder(let m): "state folder: \(m)"
        case .controller(let m): "controller: \(m)"
        case .insecureTransport(let m): m
        }
    }
}

/// The agent's state folder: `identity.json` and the last applied view (`view`), both 0600, written
/// atomically (temporary file + rename), so a crash leaves the old or the new one, never half.
public struct AgentStateFolder: Sendable {
    public let path: String

    public init(path: String) throws {
        self.path = path
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // An existing folder is narrowed too: it holds the agent's credential and NATS seed.
            chmod(path, 0o700)
        } catch {
            throw AgentError.stateFolder("cannot create \(path): \(error)")
        }
    }

    var identityPath: String { path + "/identity.json" }
    var natsSeedPath: String { path + "/nats.seed" }
    var natsJWTPath: String { path + "/nats.jwt" }

    /// A new NATS user key pair for an enrollment attempt, replacing any earlier one: a retried enrollment (its answer
    /// lost) must not present a key the controller already registered for the peer the lost answer named.
    public func createNATSKey() throws -> NKeyPair {
        let key = NKeyPair.generate(.user)
        try writeAtomically(Array((key.seed + "\n").utf8), to: natsSeedPath)
        return key
    }

    /// The agent's NATS user key pair, generated here at first start; its seed never leaves this folder (0600).
    public func loadOrCreateNATSKey() throws -> NKeyPair {
        if let data = FileManager.default.contents(atPath: natsSeedPath) {
            do {
                return try NKeyPair(seed: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            } catch {
                throw AgentError.stateFolder("\(natsSeedPath) is not a NATS user seed (\(error)); remove it and re-enroll")
            }
        }
        let key = NKeyPair.generate(.user)
        try writeAtomically(Array((key.seed + "\n").utf8), to: natsSeedPath)
        return key
    }

    /// The last NATS user JWT the controller issued (nil when none is stored).
    public func loadNATSJWT() -> String? {
        FileManager.default.contents(atPath: natsJWTPath).map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
            .flatMap { $0.isEmpty ? nil : $0 }
    }

    public func saveNATSJWT(_ jwt: String) throws {
        try writeAtomically(Array((jwt + "\n").utf8), to: natsJWTPath)
    }
    var viewPath: String { path + "/view" }

    public func loadIdentity() throws -> AgentIdentity? {
        guard let data = FileManager.default.contents(atPath: identityPath) else { return nil }
        do {
            return try JSONDecoder().decode(AgentIdentity.self, from: data)
        } catch {
            throw AgentError.stateFolder("\(identityPath) does not parse (\(error)); remove it to enroll again")
        }
    }

    public func save(_ identity: AgentIdentity) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(Array(try encoder.encode(identity)), to: identityPath)
    }

    /// The persisted view as read back: its bytes checked against the digest; the signature is checked by the caller
    /// (`ViewVerifier`) before it is applied.
    public struct PersistedView: Sendable, Equatable {
        public var version: Int64
        public var digest: String
        public var removed: Bool
        public var signature: ViewSignature
        public var body: [UInt8]

        public init(version: Int64, digest: String, removed: Bool, signature: ViewSignature, body: [UInt8]) {
            self.version = version
            self.digest = digest
            self.removed = removed
            self.signature = signature
            self.body = body
        }
    }

    /// The persisted view: a header line and the view's bytes. Header (version 2, space-separated, every field a token
    /// without spaces): `routeplane-view 2 <version> <true|false removed> <digest> <key> <signature>` and, during a key
    /// rotation, ` <endorsed key> <endorsement signature>`. Version 1 headers (no signature) are refused on load.
    public func saveView(version: Int64, digest: String, removed: Bool, signature: ViewSignature, body: [UInt8]) throws {
        var header = "routeplane-view 2 \(version) \(removed) \(digest) \(signature.key) \(signature.signature)"
        if let endorsement = signature.endorsement { header += " \(endorsement.key) \(endorsement.signature)" }
        try writeAtomically(Array((header + "\n").utf8) + body, to: viewPath)
    }

    /// The persisted view if its header is well-formed and its digest matches its bytes; nil when there is none.
    public func loadView() throws -> PersistedView? {
        guard let data = FileManager.default.contents(atPath: viewPath) else { return nil }
        let bytes = Array(data)
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { throw AgentError.stateFolder("\(viewPath) has no header") }
        let header = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard header.count >= 2, header[0] == "routeplane-view" else { throw AgentError.stateFolder("\(viewPath) has an unknown header") }
        guard header[1] == "2" else {
            throw AgentError.stateFolder("\(viewPath) has header version \(header[1]) (unsigned, written before signed views)")
        }
        guard header.count == 7 || header.count == 9, let version = Int64(header[2]), header[3] == "true" || header[3] == "false",
              header[4...].allSatisfy({ !$0.isEmpty }) else {
            throw AgentError.stateFolder("\(viewPath) has a malformed header")
        }
        let body = Array(bytes[(newline + 1)...])
        let digest = header[4]
        guard PeerRouteView.digest(of: body) == digest else { throw AgentError.stateFolder("\(viewPath) does not match its digest") }
        let endorsement = header.count == 9 ? ViewKeyEndorsement(key: header[7], signature: header[8]) : nil
        return PersistedView(version: version, digest: digest, removed: header[3] == "true",
                             signature: ViewSignature(key: header[5], signature: header[6], endorsement: endorsement), body: body)
    }

    /// Writes a state file 0600, atomically (see `SecretFile`).
    func writeAtomically(_ bytes: [UInt8], to target: String) throws {
        do {
            try SecretFile.write(bytes, to: target)
        } catch {
            throw AgentError.stateFolder("\(error)")
        }
    }
}
