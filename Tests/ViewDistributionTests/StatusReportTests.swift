import Foundation
@testable import ViewDistribution
@testable import ViewTransport
import Testing

/// What the status recorder accepts from the bus before anything reaches PostgreSQL (pure; no I/O).
@Suite struct StatusReportTests {
    let subject = "routeplane.t1.peer.p1.status"

    func body(_ extra: String = "") -> [UInt8] {
        Array(#"{"tenant_id":"t1","peer_id":"p1","applied_version":7\#(extra)}"#.utf8)
    }

    @Test func wellFormedReportIsReencoded() throws {
        let report = try PeerStatusRecorder.report(subject: subject, payload: body(#","selections":[{"peer_id":"r1"}]"#)).get()
        #expect(report.tenant == "t1" && report.peer == "p1" && report.appliedVersion == 7)
        let object = try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any]
        #expect(object?["applied_version"] as? Int == 7)
    }

    @Test func nulIsRefusedEscapedOrRaw() {
        #expect(PeerStatusRecorder.report(subject: subject, payload: body(#","note":"a\u0000b""#)) == .failure(.nul))
        #expect(PeerStatusRecorder.report(subject: subject, payload: body(#","a\u0000":1"#)) == .failure(.nul))
        #expect(PeerStatusRecorder.report(subject: subject, payload: body(#","x":[{"y":"\u0000"}]"#)) == .failure(.nul))
        var raw = body()
        raw.insert(0, at: 5)
        #expect(PeerStatusRecorder.report(subject: subject, payload: raw) == .failure(.nul))
    }

    @Test func oversizedBodiesAreRefused() {
        let padding = String(repeating: "x", count: 2 * 1024 * 1024)
        #expect(PeerStatusRecorder.report(subject: subject, payload: body(#","pad":"\#(padding)""#)) == .failure(.tooLarge(2 * 1024 * 1024 + 62)))
        let justFits = String(repeating: "x", count: PeerStatusRecorder.maxBodyBytes - body().count - 10)
        #expect((try? PeerStatusRecorder.report(subject: subject, payload: body(#","pad":"\#(justFits)""#)).get()) != nil)
    }

    @Test func subjectAndBodyMustAgree() {
        #expect(PeerStatusRecorder.report(subject: "routeplane.t2.peer.p1.status", payload: body()) == .failure(.mismatch))
        #expect(PeerStatusRecorder.report(subject: "routeplane.t1.peer.p2.status", payload: body()) == .failure(.mismatch))
        #expect(PeerStatusRecorder.report(subject: "routeplane.t1.peer.p1.routes", payload: body()) == .failure(.subject))
        #expect(PeerStatusRecorder.report(subject: "routeplane.t1.peer..status", payload: body()) == .failure(.subject))
        #expect(PeerStatusRecorder.report(subject: subject, payload: Array("[1,2]".utf8)) == .failure(.notAnObject))
        #expect(PeerStatusRecorder.report(subject: subject, payload: Array("not json".utf8)) == .failure(.notAnObject))
    }

    @Test func deepNestingIsRefused() {
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(PeerStatusRecorder.report(subject: subject, payload: body(#","d":\#(deep)"#)) == .failure(.tooDeep))
    }
}
