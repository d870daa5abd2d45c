/// A network range (CIDR prefix), always stored in canonical form: host bits cleared.
///
/// `Prefix(parsing: "10.0.0.5/24")` is `10.0.0.0/24` (NetBird masks too). Its text form is the
/// canonical one (`description`), so two prefixes that are equal print the same.
/// Ordering: IPv4 before IPv6, then by address, then shorter prefix first.
public struct Prefix: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public let address: IPAddress
    public let length: Int

    /// Builds a prefix, clearing the host bits of `address`. `length` must fit the family.
    public init(_ address: IPAddress, length: Int) {
        precondition(length >= 0 && length <= address.family.bitWidth, "prefix length out of range")
        self.address = address.masked(to: length)
        self.length = length
    }

    /// Parses `addr/len` (both families). The length is required, as in Go's `netip.ParsePrefix`.
    /// Errors name the input and the rule: `"10.0.0.0/33: prefix length 33 is over 32"`.
    public init(parsing text: String) throws(PrefixParseError) {
        guard let slash = text.firstIndex(of: "/") else {
            throw PrefixParseError(input: text, reason: "missing prefix length (expected address/length)")
        }
        let addrText = String(text[..<slash])
        let lenText = text[text.index(after: slash)...]
        let address: IPAddress
        do {
            address = try IPAddress(parsing: addrText)
        } catch {
            throw PrefixParseError(input: text, reason: error.reason)
        }
        guard !lenText.isEmpty, lenText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw PrefixParseError(input: text, reason: "prefix length \"\(lenText)\" is not a decimal number")
        }
        if lenText.utf8.count > 1 && lenText.utf8.first == 48 {
            throw PrefixParseError(input: text, reason: "prefix length \"\(lenText)\" has a leading zero")
        }
        guard lenText.utf8.count <= 4, let length = Int(lenText) else {
            throw PrefixParseError(input: text, reason: "prefix length \(lenText) is over \(address.family.bitWidth)")
        }
        if length > address.family.bitWidth {
            throw PrefixParseError(input: text, reason: "prefix length \(length) is over \(address.family.bitWidth)")
        }
        self.init(address, length: length)
    }

    public var family: IPAddress.Family { address.family }
    public var isV4: Bool { address.isV4 }
    public var isV6: Bool { address.isV6 }

    /// Canonical text, e.g. `10.0.0.0/24`, `fd00:1::/48`.
    public var description: String { "\(address)/\(length)" }

    /// NetBird's `network_type` string for this range.
    public var networkType: String { isV4 ? "IPv4" : "IPv6" }

    public func contains(_ other: IPAddress) -> Bool {
        other.family == family && other.masked(to: length) == address
    }

    /// True when every address of `other` is in `self`.
    public func contains(_ other: Prefix) -> Bool {
        other.family == family && other.length >= length && other.address.masked(to: length) == address
    }

    public func overlaps(_ other: Prefix) -> Bool {
        contains(other) || other.contains(self)
    }

    public static func < (a: Prefix, b: Prefix) -> Bool {
        if a.address != b.address { return a.address < b.address }
        return a.length < b.length
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Prefix(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Why a prefix did not parse: `"10.0.0.0/33: prefix length 33 is over 32"`.
public struct PrefixParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public let input: String
    public let reason: String
    public var description: String { "\(input): \(reason)" }
}

extension IPAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try IPAddress(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
