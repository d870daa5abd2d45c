/// Writes JSON text into bytes the one way the project writes it: no whitespace, strings through
/// `JSONString`, integers in plain decimal. Callers write keys and punctuation with `raw` in the
/// order their format fixes (canonical views sort keys by bytes), so the output is byte-stable.
public struct JSONWriter {
    public var bytes: [UInt8] = []

    @inlinable
    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    /// Appends `s` as it is (keys with their quotes and colon, punctuation).
    @inlinable
    public mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inlinable
    public mutating func bool(_ b: Bool) { b ? raw("true") : raw("false") }

    @inlinable
    public mutating func int(_ i: Int) {
        if i < 0 {
            bytes.append(UInt8(ascii: "-"))
            if i == .min { bytes.append(contentsOf: String(i).utf8.dropFirst()); return }
            int(-i)
            return
        }
        if i >= 10 { int(i / 10) }
        bytes.append(UInt8(ascii: "0") + UInt8(i % 10))
    }

    /// `s` as a JSON string literal (`JSONString`).
    @inlinable
    public mutating func string(_ s: String) {
        JSONString.append(s, to: &bytes)
    }

    /// `values` as a JSON array of string literals, in their order.
    @inlinable
    public mutating func strings<S: Sequence>(_ values: S) where S.Element == String {
        raw("[")
        var first = true
        for value in values {
            if !first { raw(",") }
            first = false
            string(value)
        }
        raw("]")
    }
}
