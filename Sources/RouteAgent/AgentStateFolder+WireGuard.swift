import Foundation
import RouteModel

/// The WireGuard parts of the agent's state folder: the private key (generated here, 0600, never sent anywhere) and the
/// public keys of the WireGuard peers this agent added (so after a restart it still removes only its own).
extension AgentStateFolder {
    public var wireGuardKeyPath: String { path + "/wireguard.key" }
    var wireGuardPeersPath: String { path + "/wireguard-peers" }

    /// The agent's WireGuard public key, creating the key pair at first use.
    public func loadOrCreateWireGuardKey() throws -> String {
        if let data = FileManager.default.contents(atPath: wireGuardKeyPath) {
            guard let pub = WireGuardKeys.publicKey(ofPrivate: String(decoding: data, as: UTF8.self)) else {
                throw AgentError.stateFolder("\(wireGuardKeyPath) is not a WireGuard private key; remove it (and re-enroll: the controller knows the old public key)")
            }
            return pub
        }
        let key = WireGuardKeys.generatePrivateKey()
        try writeAtomically(Array((key + "\n").utf8), to: wireGuardKeyPath)
        guard let pub = WireGuardKeys.publicKey(ofPrivate: key) else { throw AgentError.stateFolder("cannot derive a WireGuard public key") }
        return pub
    }

    /// The keys of the WireGuard peers this agent added (empty when none were recorded).
    public func loadWireGuardPeers() -> Set<String> {
        guard let data = FileManager.default.contents(atPath: wireGuardPeersPath) else { return [] }
        return Set(String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty })
    }

    public func saveWireGuardPeers(_ keys: Set<String>) throws {
        try writeAtomically(Array(keys.sorted().map { $0 + "\n" }.joined().utf8), to: wireGuardPeersPath)
    }
}
