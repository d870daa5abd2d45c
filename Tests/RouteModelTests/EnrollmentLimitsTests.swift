@testable import RouteModel
import Testing

/// The mesh address a peer enrolling with a setup key gets, the lengths of what it reports, and the tenants' quotas:
/// pure rules, without I/O.
@Suite struct EnrollmentLimitsTests {
    let key = SetupKeyID("k")
    let range = try! Prefix(parsing: "100.64.0.0/29")

    /// A tenant with a reusable setup key `k` and no peers.
    func tenant() throws -> TenantState {
        var state = TenantState()
        for command in [AccessCommand.createTenant(name: "t"),
                        .createSetupKey(id: key, name: "k", type: .reusable, expiresIn: 0, autoGroups: [], usageLimit: 0, now: 1)] {
            for event in try decideOrThrow(command, state) { state.apply(event) }
        }
        return state
    }

    func enroll(_ peer: String, ip: String? = nil, name: String? = nil, os: String = "linux",
                in state: TenantState) throws(ValidationError) -> [RouteEvent] {
        try decideOrThrow(AccessCommand.enrollWithSetupKey(key: key, peerID: PeerID(peer), name: name ?? peer, os: os, meshIP: ip,
                                                           now: 2, meshRange: range), state)
    }

    func refusal(_ body: () throws -> [RouteEvent], sourceLocation: SourceLocation = #_sourceLocation) -> ValidationError? {
        do {
            let events = try body()
            Issue.record("accepted: \(events)", sourceLocation: sourceLocation)
            return nil
        } catch {
            guard let e = error as? ValidationError else { Issue.record("\(error)", sourceLocation: sourceLocation); return nil }
            return e
        }
    }

    @Test("without ip: the lowest free host address, gaps reused, network and broadcast never; a full range is a clear 412")
    func allocation() throws {
        var state = try tenant()
        var given: [String] = []
        for i in 1...6 {
            let events = try enroll("p\(i)", in: state)
            for e in events { state.apply(e) }
            given.append(state.peer(PeerID("p\(i)"))!.meshIP.description)
        }
        #expect(given == ["100.64.0.1", "100.64.0.2", "100.64.0.3", "100.64.0.4", "100.64.0.5", "100.64.0.6"])
        let full = refusal { try enroll("p7", in: state) }
        #expect(full?.kind == .preconditionFailed && full?.field == "ip" && full?.message == "the tenant's mesh range 100.64.0.0/29 has no free address")
        #expect(MeshAddresses.firstFree(in: range, state: state) == nil)
        // A removed peer's address is given again, lowest first.
        for e in try decideOrThrow(Command.removePeer(id: PeerID("p3")), state) { state.apply(e) }
        #expect(MeshAddresses.firstFree(in: range, state: state)?.description == "100.64.0.3")
        // Deterministic: the same state gives the same address.
        #expect(try enroll("p8", in: state) == (try enroll("p8", in: state)))
    }

    @Test("a reported ip: accepted inside the range and free; outside, network/broadcast, taken or unparseable are refused naming ip")
    func reportedIP() throws {
        var state = try tenant()
        for e in try enroll("a", ip: "100.64.0.5", in: state) { state.apply(e) }
        #expect(state.peer(PeerID("a"))?.meshIP.description == "100.64.0.5")
        let outside = refusal { try enroll("b", ip: "192.168.1.1", in: state) }
        #expect(outside?.kind == .invalidArgument && outside?.field == "ip" && outside?.message == "ip 192.168.1.1 is outside the tenant's mesh range 100.64.0.0/29")
        let v6 = refusal { try enroll("b", ip: "fd00::1", in: state) }
        #expect(v6?.field == "ip" && v6?.kind == .invalidArgument)
        for edge in ["100.64.0.0", "100.64.0.7"] {
            let e = refusal { try enroll("b", ip: edge, in: state) }
            #expect(e?.field == "ip" && e?.message.contains("network or broadcast") == true, "\(edge)")
        }
        let taken = refusal { try enroll("b", ip: "100.64.0.5", in: state) }
        #expect(taken?.kind == .alreadyExists && taken?.field == "ip" && taken?.message == "mesh ip 100.64.0.5 is already used by peer a")
        let garbage = refusal { try enroll("b", ip: "not-an-ip", in: state) }
        #expect(garbage?.kind == .invalidArgument && garbage?.field == "ip")
        let long = refusal { try enroll("b", ip: String(repeating: "1", count: 65), in: state) }
        #expect(long?.field == "ip" && long?.message == "ip must be at most 64 characters, got 65")
        // Empty = not given.
        for e in try enroll("c", ip: "", in: state) { state.apply(e) }
        #expect(state.peer(PeerID("c"))?.meshIP.description == "100.64.0.1")
    }

    @Test("name 1 to 255 characters, os 1 to 64 (stored lower-case), each refused naming its field")
    func lengths() throws {
        let state = try tenant()
        #expect(try enroll("a", name: String(repeating: "n", count: 255), os: String(repeating: "L", count: 64), in: state).isEmpty == false)
        let name = refusal { try enroll("a", name: String(repeating: "n", count: 256), in: state) }
        #expect(name?.field == "name" && name?.message == "name must be 1 to 255 characters, got 256")
        let os = refusal { try enroll("a", os: String(repeating: "x", count: 65), in: state) }
        #expect(os?.field == "os" && os?.message == "os must be at most 64 characters, got 65")
        let events = try enroll("a", os: "Linux", in: state)
        guard case .peerEnrolled(let e)? = events.first else { Issue.record("\(events)"); return }
        #expect(e.peer.os == "linux")
    }

    @Test("quotas: growth past a quota is refused naming the kind; staying, shrinking and changes above a lowered quota pass")
    func quotas() throws {
        let quotas = TenantQuotas(peers: 2, routes: 1, groups: 1, setupKeys: 1, tokens: 1)
        var state = try tenant()
        // One setup key: at its quota, which is fine; a second one is refused.
        try quotas.check([], on: state)
        let secondKey = try decideOrThrow(AccessCommand.createSetupKey(id: "k2", name: "k2", type: .reusable, expiresIn: 0, autoGroups: [],
                                                                      usageLimit: 0, now: 1), state)
        #expect(throws: ValidationError(.permissionDenied, field: "setup_keys",
                                        "tenant quota of 1 setup keys reached; delete some or ask the operator to raise it")) {
            try quotas.check(secondKey, on: state)
        }
        for p in ["a", "b"] {
            let events = try enroll(p, in: state)
            try quotas.check(events, on: state)
            for e in events { state.apply(e) }
        }
        let third = try enroll("c", in: state)
        #expect(throws: ValidationError(.permissionDenied, field: "peers", "tenant quota of 2 peers reached; delete some or ask the operator to raise it")) {
            try quotas.check(third, on: state)
        }
        // Tokens: revoked ones do not count.
        let token = try decideOrThrow(AccessCommand.createToken(id: "t1", name: "t1", scope: .admin, expiresInDays: 30, now: 0, createdBy: nil, grantor: nil), state)
        try quotas.check(token, on: state)
        for e in token { state.apply(e) }
        let second = try decideOrThrow(AccessCommand.createToken(id: "t2", name: "t2", scope: .admin, expiresInDays: 30, now: 0, createdBy: nil, grantor: nil), state)
        #expect(throws: ValidationError.self) { try quotas.check(second, on: state) }
        for e in try decideOrThrow(AccessCommand.revokeToken(id: "t1"), state) { state.apply(e) }
        try quotas.check(second, on: state)
        // Groups and routes.
        let g = try decideOrThrow(Command.createGroup(id: "g", name: "g", peers: []), state)
        try quotas.check(g, on: state)
        for e in g { state.apply(e) }
        let g2 = try decideOrThrow(Command.createGroup(id: "g2", name: "g2", peers: []), state)
        #expect(throws: ValidationError.self) { try quotas.check(g2, on: state) }
        let r1 = try decideOrThrow(Command.createRoute(id: "r1", route("n1", peer: "a", groups: ["g"])), state)
        try quotas.check(r1, on: state)
        for e in r1 { state.apply(e) }
        let r2 = try decideOrThrow(Command.createRoute(id: "r2", route("n2", network: "10.0.1.0/24", peer: "a", groups: ["g"])), state)
        #expect(throws: ValidationError(.permissionDenied, field: "routes", "tenant quota of 1 routes reached; delete some or ask the operator to raise it")) {
            try quotas.check(r2, on: state)
        }
        // Lowered below what the tenant holds: renames and removals pass, growth does not.
        let lowered = TenantQuotas(peers: 1, routes: 0, groups: 0, setupKeys: 0, tokens: 0)
        try lowered.check(try decideOrThrow(Command.renamePeer(id: "a", name: "a2"), state), on: state)
        try lowered.check(try decideOrThrow(Command.removePeer(id: "b"), state), on: state)
        try lowered.check(try decideOrThrow(Command.deleteRoute(id: "r1"), state), on: state)
    }
}
