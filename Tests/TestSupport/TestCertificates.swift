import Foundation
import ProcessSpawn

/// A certificate authority made at run time with the openssl CLI (P-256 keys, valid one day) in a temp folder, and the
/// certificates it signs: no key is ever committed. `remove()` deletes the folder.
public struct TestCA: Sendable {
    public let directory: String
    /// The CA's certificate (PEM): the trust root clients are given.
    public let certificate: String
    let key: String

    /// A server certificate and its key (PEM files).
    public struct Issued: Sendable {
        public let certificate: String
        public let key: String
    }

    public static func make(name: String = "Routeplane test CA") async throws -> TestCA {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("routeplane-tls-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let ca = TestCA(directory: directory, certificate: directory + "/ca.pem", key: directory + "/ca.key")
        try await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                           "-keyout", ca.key, "-out", ca.certificate, "-days", "1", "-subj", "/CN=\(name)",
                           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                          in: directory)
        return ca
    }

    /// A server certificate for `ipAddresses` and `dnsNames`, signed by this CA.
    public func issue(name: String = "server", ipAddresses: [String] = ["127.0.0.1"], dnsNames: [String] = ["localhost"]) async throws -> Issued {
        let base = directory + "/" + name
        try await Self.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=\(name)"], in: directory)
        let names = ipAddresses.map { "IP:\($0)" } + dnsNames.map { "DNS:\($0)" }
        let extensions = "subjectAltName=\(names.joined(separator: ","))\nbasicConstraints=CA:FALSE\n"
            + "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        try extensions.write(toFile: base + ".ext", atomically: true, encoding: .utf8)
        try await Self.openssl(["x509", "-req", "-in", base + ".csr", "-CA", certificate, "-CAkey", key, "-CAcreateserial",
                                "-out", base + ".pem", "-days", "1", "-extfile", base + ".ext"], in: directory)
        return Issued(certificate: base + ".pem", key: base + ".key")
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs /usr/bin/openssl (waited for on a Dispatch thread); throws with its output when it fails.
    static func openssl(_ arguments: [String], in directory: String) async throws {
        let output = directory + "/openssl.log"
        let pid: pid_t
        do {
            pid = try ProcessSpawn.start(["/usr/bin/openssl"] + arguments, stdout: .file(output, append: false))
        } catch {
            throw TestSetupError("openssl: \(error) (install it: ops/setup)")
        }
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            DispatchQueue.global().async { continuation.resume(returning: ProcessSpawn.waitBlocking(pid)) }
        }
        guard status == 0 else {
            throw TestSetupError("openssl \(arguments.prefix(2).joined(separator: " ")) failed (\(status)): \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        }
    }
}
