#if canImport(Glibc)
import Glibc
#endif

/// glibc's malloc controls that Swift's Glibc module does not import (they live in `<malloc.h>`), looked up once with
/// `dlsym`; no-ops where they are missing (another C library).
public enum MallocControl {
    #if canImport(Glibc)
    private typealias Trim = @convention(c) (Int) -> Int32
    private typealias Option = @convention(c) (Int32, Int32) -> Int32
    private static let trimFunction: Trim? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim").map { unsafeBitCast($0, to: Trim.self) }
    private static let optionFunction: Option? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt").map { unsafeBitCast($0, to: Option.self) }
    #endif

    /// Hands memory freed by a large batch back to the kernel. A batch that changed thousands of views allocated and
    /// freed tens of MB (the views' bodies, the COPY buffer, the decoded events); glibc keeps freed chunks in its
    /// arenas for reuse, and after a tenant's first projection the controller's resident set stayed near its peak
    /// (`routeplane-bench memory`). `malloc_trim(0)` returns every free page of every arena. Called only after large
    /// batches: it walks the heap, a cost small batches should not pay.
    public static func releaseFreedMemory() {
        #if canImport(Glibc)
        _ = trimFunction?(0)
        #endif
    }

    /// `mallopt(M_ARENA_MAX, n)`: at most `n` malloc arenas from now on (threads that have one keep it).
    @discardableResult
    public static func limitArenas(_ n: Int) -> Bool {
        #if canImport(Glibc)
        // M_ARENA_MAX in <malloc.h>.
        return (optionFunction?(-8, Int32(clamping: n)) ?? 0) == 1
        #else
        return false
        #endif
    }
}
