import CResolv
import Dispatch
import RouteModel

/// The addresses and TTLs of a DNS answer message (RFC 1035 §4.1). Pure.
public enum DNSAnswer {
    public struct Record: Hashable, Sendable {
        public var address: IPAddress
        public var ttl: UInt32
    }

    /// The A and AAAA records of the answer section, and the smallest TTL of every answer record (CNAMEs included: the
    /// chain is only as fresh as its shortest link). nil when the message cannot be read.
    public static func parse(_ message: [UInt8]) -> (records: [Record], minimumTTL: UInt32?)? {
        guard message.count >= 12 else { return nil }
        func u16(_ i: Int) -> Int { Int(message[i]) << 8 | Int(message[i + 1]) }
        let questions = u16(4), answers = u16(6)
        var i = 12
        func skipName() -> Bool {
            var hops = 0
            while i < message.count {
                let length = Int(message[i])
                if length == 0 { i += 1; return true }
                if length & 0xC0 == 0xC0 { i += 2; return i <= message.count }
                if length & 0xC0 != 0 { return false }
                i += 1 + length
                hops += 1
                if hops > 127 { return false }
            }
            return false
        }
        for _ in 0..<questions {
            guard skipName(), i + 4 <= message.count else { return nil }
            i += 4
        }
        var records: [Record] = []
        var minimum: UInt32?
        for _ in 0..<answers {
            guard skipName(), i + 10 <= message.count else { return nil }
            let type = u16(i), klass = u16(i + 2)
            let ttl = UInt32(message[i + 4]) << 24 | UInt32(message[i + 5]) << 16 | UInt32(message[i + 6]) << 8 | UInt32(message[i + 7])
            let length = u16(i + 8)
            i += 10
            guard i + length <= message.count else { return nil }
            if klass == 1 {
                minimum = min(minimum ?? ttl, ttl)
                if type == 1, length == 4 {
                    let v = UInt32(message[i]) << 24 | UInt32(message[i + 1]) << 16 | UInt32(message[i + 2]) << 8 | UInt32(message[i + 3])
                    records.append(Record(address: IPAddress(v4: v), ttl: ttl))
                } else if type == 28, length == 16 {
                    var high: UInt64 = 0, low: UInt64 = 0
                    for k in 0..<8 { high = high << 8 | UInt64(message[i + k]) }
                    for k in 8..<16 { low = low << 8 | UInt64(message[i + k]) }
                    records.append(Record(address: IPAddress(v6High: high, low: low), ttl: ttl))
                }
            }
            i += length
        }
        return (records, minimum)
    }

    /// One query's result as the resolver reported it.
    public enum QueryResult: Hashable, Sendable {
        case message([UInt8])
        /// A definite "nothing": NXDOMAIN or no record of this type.
        case noData
        case failed(String)
    }

    /// The outcome of a name's A and AAAA queries together: addresses from either count as an answer (the smallest TTL
    /// of both); a failure of one with nothing from the other is a failure; two definite "nothing"s are an empty answer.
    public static func combine(_ results: [QueryResult]) -> DomainResolutionStateMachine.Outcome {
        var addresses: [IPAddress] = []
        var ttl: UInt32?
        var failure: String?
        for result in results {
            switch result {
            case .message(let bytes):
                guard let parsed = parse(bytes) else { failure = "unreadable DNS answer"; continue }
                addresses += parsed.records.map(\.address)
                if let t = parsed.minimumTTL { ttl = min(ttl ?? t, t) }
            case .noData:
                break
            case .failed(let why):
                failure = why
            }
        }
        if !addresses.isEmpty { return .answered(addresses, ttl: ttl.map { .seconds(Int64($0)) }) }
        if let failure { return .failed(failure) }
        return .answered([], ttl: ttl.map { .seconds(Int64($0)) })
    }
}

/// Resolves exact names with the system resolver (glibc's libresolv: /etc/resolv.conf's name servers, its timeouts and
/// attempts), A and AAAA, off the cooperative thread pool (the call blocks for up to the resolver's timeout).
public struct SystemResolver: Sendable {
    public init() {}

    public func resolve(_ name: String) async -> DomainResolutionStateMachine.Outcome {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: DNSAnswer.combine([Self.query(name, type: 1), Self.query(name, type: 28)]))
            }
        }
    }

    static func query(_ name: String, type: Int32) -> DNSAnswer.QueryResult {
        let capacity: Int32 = 4096
        var buffer = [UInt8](repeating: 0, count: Int(capacity))
        var herr: Int32 = 0
        let n = name.withCString { routeplane_res_query($0, type, &buffer, capacity, &herr) }
        if n >= 0 { return .message(Array(buffer.prefix(Int(min(n, capacity))))) }
        switch herr {
        case 1, 4: return .noData                      // HOST_NOT_FOUND (NXDOMAIN), NO_DATA
        case 2: return .failed("no answer from the name servers (timeout or SERVFAIL)")
        default: return .failed(n == -2 ? "the resolver could not start (/etc/resolv.conf?)" : "resolver error \(herr)")
        }
    }
}
