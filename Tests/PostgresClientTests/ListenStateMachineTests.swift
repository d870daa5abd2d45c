@testable import PostgresClient
import Testing

@Suite("LISTEN state machine (no I/O)")
struct ListenStateMachineTests {
    let configuration = ListenStateMachine.Configuration(pollInterval: .milliseconds(250), minBackoff: .seconds(1), maxBackoff: .seconds(4))

    @Test func connectsListensAndDeliversNotificationsInOrder() {
        var machine = ListenStateMachine(configuration: configuration)
        #expect(machine.next() == .connect)
        #expect(machine.connected() == .deliver(.listening(recovered: false)))
        #expect(machine.next() == .waitForNotifications(timeout: .milliseconds(250)))
        let a = PostgresNotification(channel: "c", payload: "a"), b = PostgresNotification(channel: "c", payload: "b")
        #expect(machine.received([a, b]) == .deliver(.notification(a)))
        #expect(machine.next() == .deliver(.notification(b)))
        #expect(machine.next() == .waitForNotifications(timeout: .milliseconds(250)))
        #expect(machine.received([]) == .deliver(.idle))
    }

    @Test func lostConnectionIsReplacedAtOnceAndTheReaderToldToReRead() {
        var machine = ListenStateMachine(configuration: configuration)
        _ = machine.next()
        _ = machine.connected()
        _ = machine.next()
        #expect(machine.connectionLost(reason: "gone") == .deliver(.lost(reason: "gone")))
        #expect(machine.next() == .connect)
        #expect(machine.connected() == .deliver(.listening(recovered: true)))
    }

    @Test func firstConnectFailureIsReportedThenBacksOffWithIdleWakeUps() {
        var machine = ListenStateMachine(configuration: configuration)
        #expect(machine.next() == .connect)
        #expect(machine.connectFailed(reason: "refused") == .deliver(.unavailable(reason: "refused")))
        // 1 s of back-off in poll-interval slices, each a wake-up for a polling reader.
        for _ in 0..<3 {
            #expect(machine.next() == .sleep(.milliseconds(250)))
            #expect(machine.slept(.milliseconds(250)) == .deliver(.idle))
        }
        #expect(machine.next() == .sleep(.milliseconds(250)))
        #expect(machine.slept(.milliseconds(250)) == .connect)
        // A second failure is not reported again; the back-off doubles.
        #expect(machine.connectFailed(reason: "refused") == .sleep(.milliseconds(250)))
        #expect(machine.state == .sleeping(failures: 2, remaining: .seconds(2)))
    }

    @Test func failureAfterALostConnectionIsNotReportedTwice() {
        var machine = ListenStateMachine(configuration: configuration)
        _ = machine.next()
        _ = machine.connected()
        _ = machine.next()
        _ = machine.connectionLost(reason: "gone")
        #expect(machine.next() == .connect)
        #expect(machine.connectFailed(reason: "refused") == .sleep(.milliseconds(250)))
    }

    @Test func recoveryResetsTheBackoff() {
        var machine = ListenStateMachine(configuration: configuration)
        _ = machine.next()
        _ = machine.connectFailed(reason: "x")
        for _ in 0..<4 { _ = machine.next(); _ = machine.slept(.milliseconds(250)) }
        #expect(machine.connected() == .deliver(.listening(recovered: true)))
        _ = machine.next()
        _ = machine.connectionLost(reason: "y")
        _ = machine.next()
        _ = machine.connectFailed(reason: "z")
        #expect(machine.state == .sleeping(failures: 1, remaining: .seconds(1)))
    }

    @Test func backoffDoublesUpToTheCap() {
        let machine = ListenStateMachine(configuration: configuration)
        #expect([1, 2, 3, 4, 10].map { machine.backoff(afterFailures: $0) } == [.seconds(1), .seconds(2), .seconds(4), .seconds(4), .seconds(4)])
    }
}
