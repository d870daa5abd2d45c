import PostgresClient

/// Which tenant partitions this controller owns: the pure logic behind `PartitionOwnership` (no I/O).
///
/// Ownership is a PostgreSQL *session* advisory lock per partition, held on one dedicated connection, plus one
/// member lock per controller on the same connection (liveness: a controller that dies closes its socket and
/// PostgreSQL frees all its locks at once). Every tick the shell observes the locks (`pg_locks`) and the machine
/// decides: aim at `ceil(partitions / live members)`; above it, release the excess; below it, try to lock
/// partitions nobody holds. A joiner thus gets partitions once the others shed their excess (one or two ticks); a
/// dead member's partitions are free as soon as PostgreSQL sees its socket close, and the survivors lock them at
/// their next tick. Overlap during a handover is harmless: batches still take the per-tenant transaction lock;
/// ownership only decides who wakes up for which tenant.
///
/// The shell performs each action and reports its outcome; the state is one enum (house style: `ListenStateMachine`).
public struct PartitionOwnershipStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        public var partitions: Int
        /// Between two observations (bounds the handover time: a dead owner's partitions are locked by a
        /// survivor at most one tick after PostgreSQL frees them).
        public var tick: Duration
        public var minBackoff: Duration
        public var maxBackoff: Duration

        public init(partitions: Int = TenantPartitions.standard.count, tick: Duration = .milliseconds(250),
                    minBackoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(4)) {
            self.partitions = partitions
            self.tick = tick
            self.minBackoff = minBackoff
            self.maxBackoff = maxBackoff
        }
    }

    /// The advisory locks of our key classes, as `pg_locks` shows them.
    public struct Observation: Sendable, Equatable {
        /// Our backend's pid (the dedicated connection's).
        public var me: Int32
        /// Live controllers with our partition count (member locks), us included.
        public var members: Int
        /// Partition → the backend pid holding it.
        public var owners: [Int: Int32]
        /// Member locks of controllers with another partition count (a misconfiguration: logged).
        public var foreignMembers: Int

        public init(me: Int32, members: Int, owners: [Int: Int32], foreignMembers: Int = 0) {
            self.me = me
            self.members = members
            self.owners = owners
            self.foreignMembers = foreignMembers
        }
    }

    public enum LogEvent: Sendable, Equatable {
        /// Ownership changed: what we hold now, among how many members.
        case rebalanced(acquired: [Int], released: [Int], owned: [Int], members: Int)
        /// The first failure to connect of an outage.
        case unavailable(reason: String)
        /// The ownership connection broke: every partition is given up until it is back.
        case lost(reason: String)
        case recovered
        /// Controllers with another partition count share the database (first time seen, or count changed).
        case foreignMembers(Int)
    }

    public enum Action: Sendable, Equatable {
        /// Open the dedicated connection and take the member lock; report `connected()` or `connectFailed(reason:)`.
        case connect
        /// Read the locks; report `observed(_:)` or `connectionLost(reason:)`.
        case observe
        /// Try-lock `acquire`, unlock `release`; report `changed(acquired:released:)` or `connectionLost(reason:)`.
        case change(acquire: [Int], release: [Int])
        /// Tell the work loops which partitions are ours now (a gain means: sweep them).
        case announce(Set<Int>)
        /// Sleep, then report `slept()`.
        case sleep(Duration)
        /// Close the connection (frees every lock it holds).
        case closeConnection
        case log(LogEvent)
    }

    enum State: Sendable, Equatable {
        case idle
        /// A connect is in flight after `failures` failed attempts in a row (`down`: we had or tried a connection).
        case connecting(failures: Int, down: Bool)
        /// Connected; an observation (or a change) is in flight. `owned`: the partitions we hold.
        case observing(owned: Set<Int>, foreign: Int)
        case changing(owned: Set<Int>, foreign: Int, members: Int)
        case sleeping(owned: Set<Int>, foreign: Int)
        case backingOff(failures: Int)
        case stopped
    }

    public let configuration: Configuration
    private(set) var state: State = .idle

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// The partitions held (empty unless connected).
    public var owned: Set<Int> {
        switch state {
        case let .observing(owned, _), let .changing(owned, _, _), let .sleeping(owned, _): owned
        default: []
        }
    }

    public mutating func start() -> [Action] {
        guard case .idle = state else { return [] }
        state = .connecting(failures: 0, down: false)
        return [.connect]
    }

    public mutating func connected() -> [Action] {
        guard case let .connecting(_, down) = state else { return [] }
        state = .observing(owned: [], foreign: 0)
        return (down ? [.log(.recovered)] : []) + [.observe]
    }

    public mutating func connectFailed(reason: String) -> [Action] {
        guard case let .connecting(failures, down) = state else { return [] }
        state = .backingOff(failures: failures + 1)
        return (failures == 0 && !down ? [.log(.unavailable(reason: reason))] : []) + [.sleep(backoff(afterFailures: failures + 1))]
    }

    /// The decision: release the excess over the target, or lock free partitions up to it.
    public mutating func observed(_ observation: Observation) -> [Action] {
        guard case let .observing(_, foreign) = state else { return [] }
        let partitions = configuration.partitions
        var actions: [Action] = []
        if observation.foreignMembers != foreign {
            if observation.foreignMembers > 0 { actions.append(.log(.foreignMembers(observation.foreignMembers))) }
        }
        // What the locks say we hold (the truth; our session locks only vanish with the connection).
        let owned = Set(observation.owners.filter { $0.value == observation.me }.map(\.key)).filter { $0 < partitions }
        let members = max(observation.members, 1)
        let target = Self.target(partitions: partitions, members: members)
        if owned.count > target {
            let release = Array(owned.sorted().suffix(owned.count - target))
            state = .changing(owned: owned, foreign: observation.foreignMembers, members: members)
            return actions + [.change(acquire: [], release: release)]
        }
        if owned.count < target {
            // Free partitions, starting at an offset of our own so that members do not all try the same ones first.
            let start = Int(UInt32(bitPattern: observation.me) % UInt32(partitions))
            let free = (0..<partitions).map { ($0 + start) % partitions }.filter { observation.owners[$0] == nil }
            let acquire = Array(free.prefix(target - owned.count))
            if !acquire.isEmpty {
                state = .changing(owned: owned, foreign: observation.foreignMembers, members: members)
                return actions + [.change(acquire: acquire, release: [])]
            }
        }
        state = .sleeping(owned: owned, foreign: observation.foreignMembers)
        return actions + [.sleep(configuration.tick)]
    }

    public mutating func changed(acquired: [Int], released: [Int]) -> [Action] {
        guard case let .changing(owned, foreign, members) = state else { return [] }
        let now = owned.union(acquired).subtracting(released)
        state = .sleeping(owned: now, foreign: foreign)
        var actions: [Action] = []
        if !acquired.isEmpty || !released.isEmpty {
            actions.append(.log(.rebalanced(acquired: acquired.sorted(), released: released.sorted(), owned: now.sorted(), members: members)))
            actions.append(.announce(now))
        }
        return actions + [.sleep(configuration.tick)]
    }

    public mutating func slept() -> [Action] {
        switch state {
        case let .sleeping(owned, foreign):
            state = .observing(owned: owned, foreign: foreign)
            return [.observe]
        case let .backingOff(failures):
            state = .connecting(failures: failures, down: true)
            return [.connect]
        default:
            return []
        }
    }

    /// Any failure on the connection: everything is given up (the locks die with the connection) and we reconnect.
    public mutating func connectionLost(reason: String) -> [Action] {
        let held = owned
        switch state {
        case .observing, .changing, .sleeping:
            state = .connecting(failures: 0, down: true)
            return [.log(.lost(reason: reason))] + (held.isEmpty ? [] : [.announce([])]) + [.closeConnection, .connect]
        default:
            return []
        }
    }

    public mutating func stop() -> [Action] {
        let held = owned
        let wasConnected: Bool
        switch state {
        case .stopped: return []
        case .observing, .changing, .sleeping: wasConnected = true
        default: wasConnected = false
        }
        state = .stopped
        return (held.isEmpty ? [] : [.announce([])]) + (wasConnected ? [.closeConnection] : [])
    }

    /// `ceil(partitions / members)`.
    public static func target(partitions: Int, members: Int) -> Int {
        let m = max(members, 1)
        return (partitions + m - 1) / m
    }

    func backoff(afterFailures failures: Int) -> Duration {
        Backoff.doubling(afterFailures: failures, first: configuration.minBackoff, limit: configuration.maxBackoff)
    }
}
