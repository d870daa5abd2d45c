@testable import RouteAgent
import Testing

/// The health responder's and prober's thread starts once, stops once, and never starts after a stop.
@Suite("Thread lifecycle")
struct ThreadLifecycleTests {
    func start(_ l: inout ThreadLifecycle) -> Bool { l.start() }
    func stop(_ l: inout ThreadLifecycle) -> (wasRunning: Bool, first: Bool) { l.stop() }

    @Test func startsOnceStopsOnce() {
        var l = ThreadLifecycle.idle
        #expect(start(&l))
        #expect(!start(&l))
        #expect(stop(&l) == (true, true))
        #expect(stop(&l) == (false, false))
        #expect(!start(&l) && l.isStopped)
    }

    @Test func stoppedBeforeStarting() {
        var l = ThreadLifecycle.idle
        #expect(stop(&l) == (false, true))
        #expect(!start(&l))
    }
}
