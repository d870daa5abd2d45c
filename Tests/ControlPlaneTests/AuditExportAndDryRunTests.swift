@testable import ControlPlane
import Foundation
import Projections
import RouteModel
import Testing

/// The pure parts of the audit export (parameters, cursor, CSV quoting) and of the dry run's preview.
@Suite struct AuditExportAndDryRunTests {
    static func export(_ parameters: [String: String]) throws(ControlPlaneError) -> AuditExport {
        try AuditExport { parameters[$0] }
    }

    @Test func parametersAreCheckedByName() throws {
        #expect(try Self.export([:]).format == .ndjson)
        #expect(try Self.export(["format": "csv"]).format == .csv)
        for (parameters, field) in [(["format": "xml"], "format"), (["limit": "10"], "limit"), (["cursor": "x"], "cursor"),
                                    (["cursor": "12-0"], "cursor"), (["cursor": "-1"], "cursor"), (["order": "up"], "order"),
                                    (["start_date": "yesterday"], "start_date"), (["activity_code": "nope"], "activity_code")] {
            do {
                _ = try Self.export(parameters)
                Issue.record("\(parameters) accepted")
            } catch {
                #expect(error.field == field, "\(parameters): \(error)")
            }
        }
        #expect((try? Self.export(["cursor": "42"])) != nil)
        #expect((try? Self.export(["cursor": "42-3"])) != nil)
    }

    /// RFC 4180: a field with a comma, a quote, CR or LF is quoted, its quotes doubled; others stay as they are. Read back by
    /// a strict RFC 4180 reader, every field is the original.
    @Test func csvQuotingRoundTrips() {
        #expect(AuditCSV.field("plain") == "plain")
        #expect(AuditCSV.field("a,b") == "\"a,b\"")
        #expect(AuditCSV.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(AuditCSV.field("two\nlines") == "\"two\nlines\"")
        #expect(AuditCSV.field("cr\r") == "\"cr\r\"")
        #expect(AuditCSV.field("") == "")
        let rows = [["1", "a,b", "\"q\"", "x\r\ny", "", "{\"k\":\"v, w\"}"], ["2-1", "é ü", " spaced ", ",", "\"", "\n"]]
        let text = rows.map { $0.map(AuditCSV.field).joined(separator: ",") + "\r\n" }.joined()
        #expect(Self.parseCSV(text) == rows)
    }

    /// A strict RFC 4180 reader (CRLF records, quoted fields with doubled quotes).
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false, afterQuote = false
        var chars = Array(text.unicodeScalars)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { quoted = false; afterQuote = true }
                } else { field.unicodeScalars.append(c) }
                continue
            }
            switch c {
            case "\"" where field.isEmpty && !afterQuote: quoted = true
            case ",": row.append(field); field = ""; afterQuote = false
            case "\r" where chars.first == "\n":
                chars.removeFirst()
                row.append(field); rows.append(row); row = []; field = ""; afterQuote = false
            default: field.unicodeScalars.append(c)
            }
        }
        return rows
    }

    @Test func csvRowsHaveTheHeaderColumns() throws {
        let e = try Self.export(["format": "csv"])
        let entry = AuditEntry(id: "7-1", timestamp: "2026-12-05T10:00:00.000000Z", activity: "Group added to peer", activity_code: "peer.group.add",
                               initiator_id: "token:t", initiator_name: "ops, night", initiator_email: "", target_id: "p1", request_id: nil,
                               meta: ["group": "a \"b\""], details: ["peers": .strings(["p1", "p2"])])
        let text = String(decoding: e.header + e.render([entry]), as: UTF8.self)
        let rows = Self.parseCSV(text)
        #expect(rows.count == 2)
        #expect(rows[0] == AuditCSV.columns)
        #expect(rows[1].count == AuditCSV.columns.count)
        #expect(rows[1][0] == "7-1")
        #expect(rows[1][5] == "ops, night")
        #expect(rows[1][9] == #"{"group":"a \"b\""}"#)
        // NDJSON: one line per entry, each a JSON object.
        let nd = String(decoding: try Self.export([:]).render([entry, entry]), as: UTF8.self)
        #expect(nd.split(separator: "\n").count == 2 && nd.hasSuffix("\n"))
    }

    /// The preview: the events numbered after the base, the affected peers, and a view diff only for views that change.
    @Test func previewOfARouteCreation() throws {
        var snapshot = TenantSnapshot()
        var sequence: Int64 = 0
        func apply(_ command: Command) throws {
            guard case .success(let events) = decide(command, snapshot.state) else { throw TestFailure("refused: \(command)") }
            for e in events { sequence += 1; snapshot.apply(e, sequence: sequence) }
        }
        try apply(.enrollPeer(id: "r1", name: "r1", os: "linux", meshIP: "100.64.0.1"))
        try apply(.enrollPeer(id: "c1", name: "c1", os: "linux", meshIP: "100.64.0.2"))
        try apply(.enrollPeer(id: "c2", name: "c2", os: "linux", meshIP: "100.64.0.3"))
        try apply(.createGroup(id: "clients", name: "clients", peers: ["c1"]))
        let input = RouteInput(networkID: "lan", description: "", network: "10.0.0.0/24", domains: nil, peer: "r1", peerGroups: nil,
                               metric: 100, masquerade: true, groups: ["clients"], enabled: true, keepRoute: false, accessControlGroups: nil)
        guard case .success(let events) = decide(.createRoute(id: "rt", input), snapshot.state) else { throw TestFailure("refused") }
        let preview = DryRunPreview(before: snapshot, events: events)
        #expect(preview.baseSequence == sequence)
        #expect(preview.events.map(\.sequence) == [sequence + 1])
        #expect(preview.events.map(\.type) == ["RouteCreated"])
        #expect(preview.events.first?.targetID == "rt")
        #expect(Set(preview.affectedPeers) == ["r1", "c1"])
        #expect(preview.views.map(\.peerID) == ["c1", "r1"])
        #expect(preview.views[0].added.map(\.role) == [.client])
        #expect(preview.views[1].added.map(\.role) == [.forward])
        // The state it was decided against is untouched (a value).
        #expect(snapshot.state.routes.isEmpty)
        // A change that moves no view (a description) names no view.
        var withRoute = snapshot
        withRoute.apply(events[0], sequence: sequence + 1)
        var described = input
        described.description = "office"
        guard case .success(let update) = decide(.updateRoute(id: "rt", described), withRoute.state) else { throw TestFailure("refused") }
        #expect(DryRunPreview(before: withRoute, events: update).views.isEmpty)
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
