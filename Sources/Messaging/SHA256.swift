import Crypto

/// SHA-256 of a view's bytes, as the envelope's digest (lowercase hex; the same as RouteModel's
/// `PeerRouteView.digest(of:)`), through swift-crypto.
public enum SHA256Digest {
    public static func hash<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8] {
        Array(SHA256.hash(data: Array(bytes)))
    }

    public static func hex<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in SHA256.hash(data: Array(bytes)) {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
