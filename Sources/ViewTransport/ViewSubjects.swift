import NATSClient
/// Names on the bus for per-peer route views.
///
/// Subject `routeplane.<tenant>.peer.<peer>.routes`; message id `<tenant>:<peer>:<version>:<16 hex of an HMAC>` (JetStream drops a
/// second message with the same id inside the stream's duplicate window). Tenant and peer ids become subject
/// tokens, so they are restricted to `[A-Za-z0-9_-]` (no `.`, `*`, `>`, whitespace, and no `:` that would make
/// the message id ambiguous). The relay leaves rows with other ids unsent (they stay in the outbox depth).
public enum ViewSubjects {
    public static let prefix = "routeplane"
    /// Every peer's view subject (the stream's subject filter).
    public static let wildcard = "routeplane.*.peer.*.routes"
    /// The SQL regular expression equivalent of `isValidToken` (used by the relay's claim).
    public static let tokenPattern = "^[A-Za-z0-9_-]+$"

    public static func isValidToken(_ token: String) -> Bool {
        !token.isEmpty && token.utf8.count <= 128 && token.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == 0x2d || b == 0x5f
        }
    }

    /// The subject of one peer's view; throws for ids that cannot be subject tokens.
    public static func subject(tenant: String, peer: String) throws(NATSError) -> String {
        guard isValidToken(tenant) else { throw .invalidArgument("tenant id \(tenant.debugDescription) cannot be a subject token") }
        guard isValidToken(peer) else { throw .invalidArgument("peer id \(peer.debugDescription) cannot be a subject token") }
        return "\(prefix).\(tenant).peer.\(peer).routes"
    }

    /// The JetStream message id of one view version: `<tenant>:<peer>:<version>:<16 hex>` (see `ViewSigner.messageID`).
    public static func messageID(tenant: String, peer: String, version: Int64, digest: String, signer: ViewSigner) -> String {
        signer.messageID(tenant: tenant, peer: peer, version: version, digest: digest)
    }
}

extension StreamSpec {
    /// `ROUTEPLANE_VIEWS` on `routeplane.*.peer.*.routes`, last message per subject, 2-minute duplicate window.
    public static let views = StreamSpec(name: "ROUTEPLANE_VIEWS", subjects: [ViewSubjects.wildcard])
}
