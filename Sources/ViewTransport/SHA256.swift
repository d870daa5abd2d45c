import Crypto
import RouteModel

/// SHA-256 of a view's bytes, as the envelope's digest: RouteModel's `SHA256Hex` (the view digest's own
/// definition), and the raw hash for callers that only need the work done.
public enum SHA256Digest {
    public static func hash<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8] {
        Array(SHA256.hash(data: Array(bytes)))
    }

    public static func hex<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        SHA256Hex.of(bytes)
    }
}
