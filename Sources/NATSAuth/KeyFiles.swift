import Foundation

/// The file side of `NATSKeyDirectory`: a 0700 folder of 0600 files, each written atomically (temporary file, fsync,
/// rename, fsync of the folder).
struct KeyFiles {
    let directory: String

    func url(_ name: String) -> String { directory + "/" + name }

    func error(_ name: String, _ reason: String) -> NATSKeyDirectoryError {
        NATSKeyDirectoryError(path: url(name), reason: reason, directory: directory)
    }

    /// Creates the folder (and its parents) if needed and restricts it to its owner (0700).
    func ensureDirectory() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw NATSKeyDirectoryError(path: directory, reason: "exists and is not a folder", directory: directory)
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw NATSKeyDirectoryError(path: directory, reason: "cannot create the folder: \(error.localizedDescription)", directory: directory)
            }
        }
        guard chmod(directory, 0o700) == 0 else {
            throw NATSKeyDirectoryError(path: directory, reason: "cannot set mode 0700: \(String(cString: strerror(errno)))", directory: directory)
        }
    }

    /// The trimmed text of a file, or nil when it does not exist. An existing file wider than 0600 is narrowed to 0600.
    func readText(_ name: String) throws -> String? {
        let path = url(name)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & 0o077 != 0 {
            guard chmod(path, 0o600) == 0 else { throw error(name, "readable by others and cannot be set to mode 0600") }
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw error(name, "cannot be read") }
        let text = String(NKey.trimmed(String(decoding: data, as: UTF8.self)))
        guard !text.isEmpty else { throw error(name, "is empty") }
        return text
    }

    /// An nkey seed file that must hold a key of `type`, or nil when it does not exist.
    func readSeed(_ name: String, _ type: NKeyType) throws -> NKeyPair? {
        guard let text = try readText(name) else { return nil }
        let key: NKeyPair
        do { key = try NKeyPair(seed: text) } catch { throw self.error(name, "not a valid nkey seed: \(error)") }
        guard key.type == type else { throw error(name, "holds a \(key.type) seed, expected \(type)") }
        return key
    }

    /// view-signing.seed: 32 bytes, base64url without padding; nil when the file does not exist.
    func readViewSeed() throws -> [UInt8]? {
        guard let text = try readText(NATSKeyDirectory.File.viewSigningSeed) else { return nil }
        guard let bytes = NATSJWT.base64URLDecode(text), bytes.count == 32 else {
            throw error(NATSKeyDirectory.File.viewSigningSeed, "expected 32 bytes in base64url (43 characters, no padding)")
        }
        return bytes
    }

    /// Writes `text` to `name` atomically with mode 0600.
    func writeAtomically(_ name: String, _ text: String) throws {
        do {
            try SecretFile.write(Array(text.utf8), to: url(name))
        } catch let failure {
            throw error(name, failure.reason)
        }
    }
}

/// Writing a file that holds a secret (keys, credentials): created 0600 with `O_EXCL` under a temporary name (never
/// readable by others, whatever the umask), written, fsynced, renamed over the target, and the folder fsynced; a crash
/// leaves the old file or the new one, never half of one.
public enum SecretFile {
    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public static func write(_ bytes: [UInt8], to path: String) throws(WriteError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/." + (path as NSString).lastPathComponent
            + ".tmp-\(getpid())-\(UInt32.random(in: .min ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WriteError(path: path, reason: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var ok = fchmod(fd, 0o600) == 0
        var offset = 0
        while ok && offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { ok = false } else { offset += n }
        }
        ok = ok && fsync(fd) == 0
        let reason = String(cString: strerror(errno))
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw WriteError(path: path, reason: "cannot write: \(reason)")
        }
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }
}
