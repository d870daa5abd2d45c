/// The host part of a URL's authority, `[user@]host[:port]` or `[user@][v6-literal][:port]`: what the agent's
/// transport check and the chaos run's loopback check both read out of service URLs (each finds where its authority
/// ends: a path, a query, a fragment — and, in lists of servers, a comma).
public enum URLAuthority {
    /// Lowercased, without user info, port or IPv6 brackets; nil when empty or a bracket is not closed.
    public static func host(_ authority: Substring) -> String? {
        var authority = authority
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let host: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
        } else {
            host = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        }
        return host.isEmpty ? nil : host.lowercased()
    }
}
