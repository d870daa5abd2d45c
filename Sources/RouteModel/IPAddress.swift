/// An IPv4 or IPv6 address as a plain value (no sockets, no libc).
///
/// IPv4 lives in the low 32 bits of `low`; IPv6 uses `high` (first 64 bits) and `low` (last 64 bits).
/// Ordering: every IPv4 address sorts before every IPv6 address, then by numeric value.
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public enum Family: UInt8, Hashable, Comparable, Sendable {
        case v4 = 4
        case v6 = 6
        public static func < (a: Family, b: Family) -> Bool { a.rawValue < b.rawValue }
        /// Number of bits in an address of this family.
        public var bitWidth: Int { self == .v4 ? 32 : 128 }
    }

    public let family: Family
    public let high: UInt64
    public let low: UInt64

    public init(v4 value: UInt32) {
        family = .v4
        high = 0
        low = UInt64(value)
    }

    public init(v6High high: UInt64, low: UInt64) {
        family = .v6
        self.high = high
        self.low = low
    }

    public var isV4: Bool { family == .v4 }
    public var isV6: Bool { family == .v6 }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.family != b.family { return a.family < b.family }
        if a.high != b.high { return a.high < b.high }
        return a.low < b.low
    }

    /// Parses an address without a prefix length: `100.64.0.1`, `fd00::1`, `::ffff:10.0.0.1`.
    /// Leading zeros in IPv4 octets and IPv6 zones (`%eth0`) are refused, as Go's `netip` does.
    public init(parsing text: String) throws(AddressParseError) {
        if text.isEmpty { throw AddressParseError(input: text, reason: "empty address") }
        if text.contains(":") {
            self = try IPAddress.parseV6(text)
        } else {
            self = IPAddress(v4: try IPAddress.parseV4(Substring(text), whole: text))
        }
    }

    /// Canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lowercase, no leading zeros,
    /// the longest run of two or more zero groups compressed to `::`, the first one on a tie,
    /// IPv4-mapped addresses as `::ffff:a.b.c.d`).
    public var description: String {
        switch family {
        case .v4:
            return IPAddress.v4String(UInt32(truncatingIfNeeded: low))
        case .v6:
            return v6String()
        }
    }

    // MARK: - bits

    /// The address with every bit after the first `length` cleared.
    public func masked(to length: Int) -> IPAddress {
        switch family {
        case .v4:
            let mask: UInt32 = length <= 0 ? 0 : (length >= 32 ? .max : ~(UInt32.max >> UInt32(length)))
            return IPAddress(v4: UInt32(truncatingIfNeeded: low) & mask)
        case .v6:
            let (mh, ml) = IPAddress.v6Mask(length)
            return IPAddress(v6High: high & mh, low: low & ml)
        }
    }

    static func v6Mask(_ length: Int) -> (UInt64, UInt64) {
        if length <= 0 { return (0, 0) }
        if length >= 128 { return (.max, .max) }
        if length <= 64 {
            let h: UInt64 = length == 64 ? .max : ~(UInt64.max >> UInt64(length))
            return (h, 0)
        }
        let l: UInt64 = ~(UInt64.max >> UInt64(length - 64))
        return (.max, l)
    }

    // MARK: - parsing

    static func parseV4(_ text: Substring, whole: String) throws(AddressParseError) -> UInt32 {
        var value: UInt32 = 0
        var parts = 0
        var current: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for ch in text.utf8 {
            if ch == UInt8(ascii: ".") {
                if digits == 0 { throw AddressParseError(input: whole, reason: "empty octet in IPv4 address") }
                parts += 1
                if parts > 3 { throw AddressParseError(input: whole, reason: "IPv4 address has more than 4 octets") }
                value = value << 8 | current
                current = 0
                digits = 0
                leadingZero = false
                continue
            }
            guard ch >= UInt8(ascii: "0"), ch <= UInt8(ascii: "9") else {
                throw AddressParseError(input: whole, reason: "unexpected character \(IPAddress.quote(ch)) in IPv4 address")
            }
            if digits == 1 && leadingZero {
                throw AddressParseError(input: whole, reason: "IPv4 octet has a leading zero")
            }
            if digits == 0 && ch == UInt8(ascii: "0") { leadingZero = true }
            current = current * 10 + UInt32(ch - UInt8(ascii: "0"))
            digits += 1
            if current > 255 { throw AddressParseError(input: whole, reason: "IPv4 octet over 255") }
        }
        if digits == 0 { throw AddressParseError(input: whole, reason: "empty octet in IPv4 address") }
        if parts != 3 { throw AddressParseError(input: whole, reason: "IPv4 address must have 4 octets") }
        return value << 8 | current
    }

    static func parseV6(_ text: String) throws(AddressParseError) -> IPAddress {
        if text.contains("%") { throw AddressParseError(input: text, reason: "IPv6 zones are not allowed") }
        var groups: [UInt16] = []
        groups.reserveCapacity(8)
        var ellipsis: Int? = nil
        let bytes = Array(text.utf8)
        var i = 0
        if bytes.count >= 2 && bytes[0] == UInt8(ascii: ":") && bytes[1] == UInt8(ascii: ":") {
            ellipsis = 0
            i = 2
            if i == bytes.count { return IPAddress(v6High: 0, low: 0) }
        } else if bytes.first == UInt8(ascii: ":") {
            throw AddressParseError(input: text, reason: "IPv6 address may not start with a single colon")
        }
        while i < bytes.count {
            // One group (hex) or a trailing embedded IPv4 address.
            var j = i
            var value: UInt32 = 0
            var digits = 0
            while j < bytes.count, let h = IPAddress.hexValue(bytes[j]) {
                value = value << 4 | UInt32(h)
                digits += 1
                j += 1
                if digits > 4 { throw AddressParseError(input: text, reason: "IPv6 group has more than 4 hex digits") }
            }
            if j < bytes.count && bytes[j] == UInt8(ascii: ".") {
                // Embedded IPv4 in the last 32 bits.
                if groups.count > 6 {
                    throw AddressParseError(input: text, reason: "misplaced IPv4 part in IPv6 address")
                }
                let s = Substring(String(decoding: bytes[i...], as: UTF8.self))
                let v4 = try IPAddress.parseV4(s, whole: text)
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xffff))
                i = bytes.count
                break
            }
            if digits == 0 { throw AddressParseError(input: text, reason: "empty group in IPv6 address") }
            groups.append(UInt16(value))
            if groups.count > 8 { throw AddressParseError(input: text, reason: "IPv6 address has more than 8 groups") }
            i = j
            if i == bytes.count { break }
            guard bytes[i] == UInt8(ascii: ":") else {
                throw AddressParseError(input: text, reason: "unexpected character \(IPAddress.quote(bytes[i])) in IPv6 address")
            }
            i += 1
            if i < bytes.count && bytes[i] == UInt8(ascii: ":") {
                if ellipsis != nil { throw AddressParseError(input: text, reason: "IPv6 address has more than one '::'") }
                ellipsis = groups.count
                i += 1
                if i == bytes.count { break }
            } else if i == bytes.count {
                throw AddressParseError(input: text, reason: "IPv6 address may not end with a single colon")
            }
        }
        if let e = ellipsis {
            if groups.count > 7 { throw AddressParseError(input: text, reason: "IPv6 address with '::' has too many groups") }
            let fill = [UInt16](repeating: 0, count: 8 - groups.count)
            groups.insert(contentsOf: fill, at: e)
        }
        if groups.count != 8 { throw AddressParseError(input: text, reason: "IPv6 address must have 8 groups") }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for k in 0..<4 { h = h << 16 | UInt64(groups[k]) }
        for k in 4..<8 { l = l << 16 | UInt64(groups[k]) }
        return IPAddress(v6High: h, low: l)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static func quote(_ c: UInt8) -> String { "'\(String(UnicodeScalar(c)))'" }

    // MARK: - formatting

    static func v4String(_ v: UInt32) -> String {
        "\(v >> 24).\((v >> 16) & 0xff).\((v >> 8) & 0xff).\(v & 0xff)"
    }

    var v6Groups: [UInt16] {
        var g = [UInt16](repeating: 0, count: 8)
        for k in 0..<4 { g[k] = UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * k)) }
        for k in 0..<4 { g[4 + k] = UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * k)) }
        return g
    }

    func v6String() -> String {
        // IPv4-mapped (::ffff:0:0/96): RFC 5952 section 5.
        if high == 0 && (low >> 32) == 0xffff {
            return "::ffff:" + IPAddress.v4String(UInt32(truncatingIfNeeded: low))
        }
        let g = v6Groups
        var bestStart = -1, bestLen = 0
        var k = 0
        while k < 8 {
            if g[k] == 0 {
                var e = k
                while e < 8 && g[e] == 0 { e += 1 }
                if e - k > bestLen && e - k >= 2 { bestStart = k; bestLen = e - k }
                k = e
            } else {
                k += 1
            }
        }
        var out = ""
        var idx = 0
        while idx < 8 {
            if idx == bestStart {
                out += "::"
                idx += bestLen
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += String(g[idx], radix: 16)
            idx += 1
        }
        return out
    }
}

/// Why an address did not parse: `"10.0.0.256: IPv4 octet over 255"`.
public struct AddressParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public let input: String
    public let reason: String
    public var description: String { "\(input): \(reason)" }
}
