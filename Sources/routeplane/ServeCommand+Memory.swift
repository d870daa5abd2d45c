import ArgumentParser
import Foundation
import Projections

/// `routeplane serve` options for the process's memory.
///
/// glibc gives each thread that allocates under contention an arena of its own (up to 8 per core) and keeps what
/// was freed in each: the projection's large batches free tens of MB on one thread and the API's snapshot allocates
/// on another, so the resident set grew by the sum (`routeplane-bench memory`). Two arenas keep contention low on
/// the few threads that allocate at once and let freed memory be reused.
struct MemoryOptions: ParsableArguments {
    @Option(name: .customLong("malloc-arenas"),
            help: "glibc malloc arenas of the process (default: $MALLOC_ARENA_MAX, else 2; 0 leaves glibc's default of 8 per core).")
    var mallocArenas: Int?

    func validate() throws {
        if let mallocArenas, mallocArenas < 0 { throw ValidationError("--malloc-arenas must be 0 or more, got \(mallocArenas)") }
    }

    /// Applies the arena limit; call first in `run()` (threads that already have an arena keep it).
    func apply() {
        // glibc reads MALLOC_ARENA_MAX itself at start; an explicit option overrides it.
        let env = ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"].flatMap(Int.init)
        let arenas = mallocArenas ?? env ?? 2
        if arenas > 0 { MallocControl.limitArenas(arenas) }
    }
}
