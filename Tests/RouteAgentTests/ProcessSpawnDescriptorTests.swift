import Foundation
import ProcessSpawn
import Testing

/// A child gets descriptors 0, 1 and 2 only, even those of the parent opened without close-on-exec (as SwiftNIO opens
/// the connections it accepts): a child holding a server's connection keeps it open after the server closed it.
@Suite("Spawned processes inherit only their standard descriptors", .timeLimit(.minutes(1)))
struct ProcessSpawnDescriptorTests {
    /// The exit status of `/usr/bin/test -e /proc/self/fd/N` run as a child: 0 when the child has descriptor N.
    static func childHas(_ fd: Int32) async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread {
                do {
                    let pid = try ProcessSpawn.start(["/usr/bin/test", "-e", "/proc/self/fd/\(fd)"])
                    let status = ProcessSpawn.waitBlocking(pid)
                    continuation.resume(returning: (status >> 8) & 0xff)
                } catch {
                    continuation.resume(returning: -1)
                }
            }.start()
        }
    }

    @Test("a descriptor opened without close-on-exec does not reach the child; the standard ones do")
    func onlyStandardDescriptors() async throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)  // plain pipe(2): no O_CLOEXEC
        defer { close(ends[0]); close(ends[1]) }
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)  // no SOCK_CLOEXEC, like an accepted connection
        #expect(socketFD >= 0)
        defer { close(socketFD) }
        #expect(fcntl(socketFD, F_GETFD) & FD_CLOEXEC == 0, "the test's socket must lack close-on-exec to test anything")
        #expect(await Self.childHas(1) == 0, "the child has its stdout (/dev/null)")
        #expect(await Self.childHas(ends[1]) == 1, "the child inherited the parent's pipe descriptor \(ends[1])")
        #expect(await Self.childHas(socketFD) == 1, "the child inherited the parent's socket descriptor \(socketFD)")
    }
}
