import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Random (version 4) UUIDs for event ids, cheaper than `UUID()`.
///
/// Measured (strace on `routeplane-bench append`): swift-corelibs-foundation's `UUID()` opens, reads and
/// closes `/dev/urandom` (plus a `prlimit64`) for every id: four system calls per event. Here the kernel's
/// CSPRNG (`arc4random_buf`, i.e. `getrandom`) fills a 4 KiB buffer once per 256 ids. Same randomness source and the same
/// RFC 9562 version-4 layout; only the buffering differs (ids are identifiers, not secrets).
@usableFromInline
enum FastUUID {
    private struct Pool: ~Copyable {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var offset = 4096
    }

    private static let pool = Mutex(Pool())

    @usableFromInline
    static func random() -> UUID {
        var raw: uuid_t = pool.withLock { pool in
            if pool.offset + 16 > pool.bytes.count {
                pool.bytes.withUnsafeMutableBytes { fillRandom($0) }
                pool.offset = 0
            }
            defer { pool.offset += 16 }
            return pool.bytes.withUnsafeBytes { buffer in
                buffer.loadUnaligned(fromByteOffset: pool.offset, as: uuid_t.self)
            }
        }
        raw.6 = (raw.6 & 0x0F) | 0x40  // version 4
        raw.8 = (raw.8 & 0x3F) | 0x80  // variant 10xx
        return UUID(uuid: raw)
    }

    private static func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
        // glibc ≥ 2.36 and Darwin: the kernel CSPRNG (getrandom on Linux), one call for the whole buffer.
        arc4random_buf(buffer.baseAddress!, buffer.count)
    }

    /// PostgreSQL's canonical text form: 36 lower-case hex digits and hyphens (`UUID.uuidString` is
    /// upper case and needs a second pass to lower it).
    static func text(_ id: UUID) -> String {
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: id.uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                digits.withUTF8Buffer { hex in
                    var o = 0
                    for i in 0..<16 {
                        if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = UInt8(ascii: "-"); o += 1 }
                        out[o] = hex[Int(bytes[i] >> 4)]
                        out[o + 1] = hex[Int(bytes[i] & 0x0F)]
                        o += 2
                    }
                    return o
                }
            }
        }
    }
}
