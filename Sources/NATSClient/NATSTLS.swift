// TLS towards nats-server: libnats's secure options (OpenSSL underneath, in Debian's libnats).

import CNATS

/// How a connection checks the server's certificate. libnats turns TLS on by itself for `tls://` URLs; `required`
/// turns it on for `nats://` URLs too (a server whose `tls {}` block makes TLS mandatory).
public struct NATSTLSSettings: Sendable, Equatable {
    /// PEM file of the CA certificates to trust (nil: the system's trust store).
    public var caFile: String?
    /// The name the server's certificate must carry when it differs from the URL's host (nil: the URL's host).
    public var expectedHostname: String?
    /// TLS even on `nats://` URLs.
    public var required: Bool

    public init(caFile: String? = nil, expectedHostname: String? = nil, required: Bool = true) {
        self.caFile = caFile
        self.expectedHostname = expectedHostname
        self.required = required
    }

    /// Whether one of `urls` asks for TLS by its scheme (`tls://`).
    public static func anyTLSURL(_ urls: [String]) -> Bool {
        urls.contains { $0.lowercased().hasPrefix("tls://") }
    }

    /// Applies these settings to libnats options. A CA file that cannot be read fails here, before any connection.
    func apply(to options: OpaquePointer) throws(NATSError) {
        if required {
            try NATSError.check(natsOptions_SetSecure(options, true), "TLS (libnats built without TLS?)")
        }
        if let caFile {
            try NATSError.check(natsOptions_LoadCATrustedCertificates(options, caFile), "NATS CA file \(caFile)")
        }
        if let expectedHostname {
            try NATSError.check(natsOptions_SetExpectedHostname(options, expectedHostname), "expected TLS host name \(expectedHostname)")
        }
    }
}
