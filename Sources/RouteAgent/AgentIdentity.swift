import Foundation
import NATSAuth
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

    enum CodingKeys: String, CodingKey {
        case controller, ip, credential
        case tenantID = "tenant_id"
        case peerID = "peer_id"
        case natsURL = "nats_url"
        case natsInboxPrefix = "nats_inbox_prefix"
    }
}

public enum AgentError: Error, CustomStringConvertible, Sendable {
    case enrollment(String)
    case stateFolder(String)
    case controller(String)

    public var description: String {
        switch self {
        case .enrollment(let m): "enrollment failed: \(m)"
        case .stateFolder(let m): "state folder: \(m)"
        case .controller(let m): "controller: \(m)"
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
        } catch {
            throw AgentError.stateFolder("cannot create \(path): \(error)")
        }
    }

    var identityPath: String { path + "/identity.json" }
    var natsSeedPath: String { path + "/nats.seed" }
    var natsJWTPath: String { path + "/nats.jwt" }

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

    /// The persisted view: a header line `routeplane-view 1 <version> <digest>` and the view's bytes.
    public func saveView(version: Int64, digest: String, body: [UInt8]) throws {
        try writeAtomically(Array("routeplane-view 1 \(version) \(digest)\n".utf8) + body, to: viewPath)
    }

    /// The persisted view if it is intact (its digest matches its bytes); nil when there is none.
    public func loadView() throws -> (version: Int64, digest: String, body: [UInt8])? {
        guard let data = FileManager.default.contents(atPath: viewPath) else { return nil }
        let bytes = Array(data)
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { throw AgentError.stateFolder("\(viewPath) has no header") }
        let header = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ")
        guard header.count == 4, header[0] == "routeplane-view", header[1] == "1", let version = Int64(header[2]) else {
            throw AgentError.stateFolder("\(viewPath) has an unknown header")
        }
        let body = Array(bytes[(newline + 1)...])
        let digest = String(header[3])
        guard PeerRouteView.digest(of: body) == digest else { throw AgentError.stateFolder("\(viewPath) does not match its digest") }
        return (version, digest, body)
    }

    func writeAtomically(_ bytes: [UInt8], to target: String) throws {
        let temporary = target + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw AgentError.stateFolder("cannot write \(temporary)")
        }
        let fd = open(temporary, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
        guard rename(temporary, target) == 0 else { throw AgentError.stateFolder("cannot rename \(temporary): errno \(errno)") }
    }
}
