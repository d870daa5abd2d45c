// The API server's TLS: the certificate chain and key of `routeplane serve --tls-cert/--tls-key`, loaded and checked
// once at start (swift-nio-ssl over BoringSSL, through HummingbirdTLS).

import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL

/// What `APIServer.service(…, tls:)` serves HTTPS with: TLS 1.2 and later, swift-nio-ssl's default cipher suites
/// (forward-secret AEAD suites only), no client certificates. Built from PEM files by `load(certificatePath:keyPath:)`,
/// which fails with a message naming the file and the problem (missing, unreadable, not PEM, key not matching the
/// certificate) instead of a failure at the first connection.
public struct APIServerTLS: Sendable {
    public let configuration: TLSConfiguration
    /// The leaf certificate (serial number, common name), for the start log line.
    public let subject: String

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func load(certificatePath: String, keyPath: String) throws -> APIServerTLS {
        try readable(certificatePath, option: "--tls-cert")
        try readable(keyPath, option: "--tls-key")
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw LoadError(description: "--tls-cert \(certificatePath): not a PEM certificate chain (\(error))")
        }
        guard let leaf = chain.first else { throw LoadError(description: "--tls-cert \(certificatePath): no certificate in the file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw LoadError(description: "--tls-key \(keyPath): not a PEM private key, or an encrypted one (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // swift-nio-ssl installs the chain, then the key: BoringSSL refuses a key whose public half is not the leaf's.
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw LoadError(description: "--tls-key \(keyPath) is not the private key of the certificate in --tls-cert \(certificatePath) (\(error))")
        }
        return APIServerTLS(configuration: configuration, subject: String(describing: leaf))
    }

    static func readable(_ path: String, option: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw LoadError(description: "\(option) \(path): no such file") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw LoadError(description: "\(option) \(path): not readable by this process (check its owner and mode)")
        }
    }

    /// The server: `base` (HTTP/1.1 with its settings), wrapped in TLS when `tls` is given. `HTTPServerBuilder.tls` only
    /// declares `throws`; its error, if one ever came, is thrown when the server starts, never a fall back to plain HTTP.
    static func serverBuilder(_ tls: APIServerTLS?, base: HTTPServerBuilder = .http1()) -> HTTPServerBuilder {
        guard let tls else { return base }
        do {
            return try .tls(base, tlsConfiguration: tls.configuration)
        } catch {
            return HTTPServerBuilder { _ in throw error }
        }
    }
}
