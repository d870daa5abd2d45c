/// The health probe's wire format: 24 bytes, big-endian.
///
/// ```
/// 0      4       5      6        8                16               24
/// | magic | version | kind | reserved | nonce (u64) | timestamp (u64) |
/// ```
/// `magic` is "RPHP"; `kind` 1 = probe, 2 = echo. The responder answers a probe with the same bytes
/// and kind 2; the prober accepts an echo only for a nonce it sent to that address, with the same
/// timestamp. Anything else (wrong size, magic, version or kind) is garbage and ignored.
public struct ProbePacket: Hashable, Sendable {
    public enum Kind: UInt8, Hashable, Sendable {
        case probe = 1
        case echo = 2
    }

    public static let magic: UInt32 = 0x5250_4850 // "RPHP"
    public static let version: UInt8 = 1
    public static let size = 24

    public var kind: Kind
    public var nonce: UInt64
    /// The prober's monotonic clock when it sent the probe, in nanoseconds (echoed unchanged).
    public var timestamp: UInt64

    public init(kind: Kind, nonce: UInt64, timestamp: UInt64) {
        self.kind = kind
        self.nonce = nonce
        self.timestamp = timestamp
    }

    /// The responder's answer to this probe.
    public var echo: ProbePacket { ProbePacket(kind: .echo, nonce: nonce, timestamp: timestamp) }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        func put<T: FixedWidthInteger>(_ v: T) {
            withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
        }
        put(Self.magic)
        put(Self.version)
        put(kind.rawValue)
        put(UInt16(0))
        put(nonce)
        put(timestamp)
        return out
    }

    /// Nil for anything that is not exactly a Routeplane probe packet.
    public init?(decoding bytes: some Collection<UInt8>) {
        guard bytes.count == Self.size else { return nil }
        let b = Array(bytes)
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v = v << 8 | T(b[offset + i]) }
            return v
        }
        guard get(0, UInt32.self) == Self.magic, b[4] == Self.version, let kind = Kind(rawValue: b[5]) else { return nil }
        self.kind = kind
        nonce = get(8, UInt64.self)
        timestamp = get(16, UInt64.self)
    }
}
