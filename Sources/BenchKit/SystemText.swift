import Foundation

/// Parsers for the text the benchmarks read from the system: `/proc/PID/status` memory lines, the
/// NATS server's `INFO` line, and `curl -w` status codes. Pure functions over strings.
public enum ProcStatus {
    /// The value of a `Name:   1234 kB` line in bytes (kB there means KiB), or nil.
    public static func bytes(_ field: String, in status: String) -> Int? {
        for line in status.split(separator: "\n") {
            guard line.hasPrefix(field + ":") else { continue }
            let parts = line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let number = parts.first.flatMap({ Int($0) }) else { return nil }
            let unit = parts.count > 1 ? parts[1].lowercased() : ""
            switch unit {
            case "kb": return number * 1024
            case "mb": return number * 1024 * 1024
            case "gb": return number * 1024 * 1024 * 1024
            default: return number
            }
        }
        return nil
    }
}

/// `/proc/PID/smaps`: resident memory summed per mapping name (the file's path, `[heap]`, `[stack]`, or
/// `[anonymous]` for unnamed mappings), largest first: where a process's RSS is.
public enum Smaps {
    public static func residentByMapping(_ smaps: String) -> [(name: String, bytes: Int)] {
        var totals: [String: Int] = [:]
        var current = "[anonymous]"
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.contains("-") && !first.hasSuffix(":") && fields.count >= 5 {
                // A mapping header: address perms offset dev inode [pathname].
                current = fields.count >= 6 ? fields[5...].joined(separator: " ") : "[anonymous]"
                if current.hasPrefix("[anon:") { current = "[anonymous]" }
            } else if first == "Rss:", fields.count >= 2, let kb = Int(fields[1]) {
                totals[current, default: 0] += kb * 1024
            }
        }
        return totals.map { (name: $0.key, bytes: $0.value) }.sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.name < $1.name }
    }
}

public enum NATSInfo {
    /// The `"version"` of the server's greeting `INFO {...}` (the first line a NATS server sends).
    public static func version(fromInfo text: String) -> String? {
        guard let start = text.range(of: "INFO ") else { return nil }
        let json = text[start.upperBound...]
        guard let key = json.range(of: "\"version\"") else { return nil }
        var rest = json[key.upperBound...].drop { $0 == " " || $0 == ":" || $0 == "\t" }
        guard rest.first == "\"" else { return nil }
        rest = rest.dropFirst()
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }
}

public enum HTTPStatusCounts {
    /// Counts of HTTP status codes, one per line (what `curl -w '%{http_code}\n'` prints per transfer).
    public static func parse(_ text: String) -> [Int: Int] {
        var counts: [Int: Int] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            if let code = Int(line.trimmingCharacters(in: " \r\t")) { counts[code, default: 0] += 1 }
        }
        return counts
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}
