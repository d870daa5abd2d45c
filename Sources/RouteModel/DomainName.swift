/// Domain names for DNS routes: checked and brought to canonical form (lowercase A-labels,
/// no trailing dot). Labels take letters, digits, hyphens and underscores as NetBird's do (`_acme.example.com`). Internationalized labels are converted with Punycode (RFC 3492) to
/// `xn--` labels; full IDNA2008 mapping is not done (lowercasing only).
public enum DomainName {
    /// Canonical form of `text`, or why it is not a valid domain. `*.` is allowed as a leading
    /// wildcard label (NetBird allows it), nowhere else.
    public static func canonical(_ text: String) -> Result<String, DomainNameError> {
        var name = text
        if name.hasSuffix(".") { name.removeLast() }
        if name.isEmpty { return .failure(DomainNameError(input: text, reason: "empty domain")) }
        var wildcard = false
        if name.hasPrefix("*.") {
            wildcard = true
            name.removeFirst(2)
        }
        let rawLabels = name.split(separator: ".", omittingEmptySubsequences: false)
        var labels: [String] = []
        labels.reserveCapacity(rawLabels.count)
        for (index, raw) in rawLabels.enumerated() {
            let isLastLabel = index == rawLabels.count - 1
            if raw.isEmpty { return .failure(DomainNameError(input: text, reason: "empty label")) }
            if raw.contains("*") {
                return .failure(DomainNameError(input: text, reason: "wildcard is only allowed as a leading \"*.\""))
            }
            let lower = raw.lowercased()
            let label: String
            if lower.unicodeScalars.allSatisfy({ $0.isASCII }) {
                label = lower
            } else {
                guard let encoded = punycode(Array(lower.unicodeScalars.map(\.value))) else {
                    return .failure(DomainNameError(input: text, reason: "label \"\(raw)\" cannot be encoded"))
                }
                label = "xn--" + encoded
            }
            if label.utf8.count > 63 {
                return .failure(DomainNameError(input: text, reason: "label \"\(raw)\" is over 63 characters"))
            }
            let last = label.utf8.count - 1
            for (i, c) in label.utf8.enumerated() {
                let alnum = (c >= 97 && c <= 122) || (c >= 48 && c <= 57)
                // NetBird (`shared/management/domain/validate.go`, `domainRegex`): letters, digits, hyphens and
                // underscores; a label ends with a letter or digit; only a label before the last may start with "_".
                let ok = alnum || ((c == 45 || c == 95) && i > 0 && i < last) || (c == 95 && i == 0 && !isLastLabel)
                if !ok {
                    if c == 45 {
                        return .failure(DomainNameError(input: text, reason: "label \"\(raw)\" starts or ends with a hyphen"))
                    }
                    if c == 95 {
                        return .failure(DomainNameError(input: text, reason: "label \"\(raw)\" has \"_\" where only a letter or digit may be"))
                    }
                    return .failure(DomainNameError(
                        input: text, reason: "label \"\(raw)\" has character \"\(String(UnicodeScalar(c)))\" (letters, digits, hyphens and underscores only)"))
                }
            }
            labels.append(label)
        }
        let result = (wildcard ? "*." : "") + labels.joined(separator: ".")
        if result.utf8.count > 253 {
            return .failure(DomainNameError(input: text, reason: "name is over 253 characters"))
        }
        return .success(result)
    }

    /// RFC 3492 Punycode encoding of one label's code points (without the `xn--` prefix).
    static func punycode(_ input: [UInt32]) -> String? {
        let base = 36, tmin = 1, tmax = 26, skew = 38, damp = 700
        var n = 128, delta = 0, bias = 72
        var out: [UInt8] = input.filter { $0 < 128 }.map { UInt8($0) }
        let basic = out.count
        var handled = basic
        if basic > 0 { out.append(UInt8(ascii: "-")) }
        func digit(_ d: Int) -> UInt8 { d < 26 ? UInt8(97 + d) : UInt8(22 + d) }
        func adapt(_ d: Int, _ points: Int, _ first: Bool) -> Int {
            var delta = first ? d / damp : d / 2
            delta += delta / points
            var k = 0
            while delta > ((base - tmin) * tmax) / 2 {
                delta /= base - tmin
                k += base
            }
            return k + (base - tmin + 1) * delta / (delta + skew)
        }
        while handled < input.count {
            guard let m = input.lazy.map({ Int($0) }).filter({ $0 >= n }).min() else { return nil }
            let (mul, o1) = (m - n).multipliedReportingOverflow(by: handled + 1)
            if o1 { return nil }
            delta += mul
            n = m
            for cp in input {
                let c = Int(cp)
                if c < n { delta += 1 }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tmin : (k >= bias + tmax ? tmax : k - bias)
                        if q < t { break }
                        out.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    out.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basic)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public struct DomainNameError: Error, Hashable, Sendable, CustomStringConvertible {
    public let input: String
    public let reason: String
    public var description: String { "\(input): \(reason)" }
}
