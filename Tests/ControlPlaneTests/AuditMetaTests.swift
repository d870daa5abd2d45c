@testable import ControlPlane
import Foundation
import RouteModel
import Testing

/// How an audit entry's structured record reads as NetBird's string meta, and how one event reads as several entries.
@Suite("Audit entries: NetBird's string meta and one entry per membership change")
struct AuditMetaTests {
    @Test("meta: strings as is, numbers and booleans as text, lists as JSON text, nulls left out, changes as old_/new_, NetBird's keys win")
    func flatten() throws {
        let d = AuditDescription(code: "route.update", activity: "Route updated", details: [
            "name": .string("lan"), "metric": .int(300), "enabled": .bool(false), "gone": .null,
            "groups": .strings(["a", "say \"hi\"\n"]),
            "changes": .object(["metric": .object(["old": .int(100), "new": .int(300)]), "peer": .object(["old": .null, "new": .string("p")])]),
        ], extra: ["name": "from-netbird", "peer_id": "p"])
        #expect(d.meta == [
            "name": "from-netbird", "metric": "300", "enabled": "false", "groups": #"["a","say \"hi\"\n"]"#,
            "old_metric": "100", "new_metric": "300", "old_peer": "", "new_peer": "p", "peer_id": "p",
        ])
        // The list is valid JSON.
        let list = try JSONSerialization.jsonObject(with: Data(d.meta["groups"]!.utf8)) as? [String]
        #expect(list == ["a", "say \"hi\"\n"])
    }

    @Test("a membership change of three peers is three entries about the peers; a setup key save is a revoke and one entry per group")
    func expansion() {
        let change = RouteEvent.groupMembersChanged(GroupMembersChanged(groupID: "g", added: ["p1", "p2"], removed: ["p3"]))
        let entries = AuditLog.describe(change)
        #expect(entries.map(\.code) == ["peer.group.add", "peer.group.add", "peer.group.delete"])
        #expect(entries.map(\.target) == ["p1", "p2", "p3"])
        #expect(entries.allSatisfy { $0.meta["group_id"] == "g" })

        let old = SetupKey(id: "k", name: "ci", type: .reusable, expiresAt: nil, autoGroups: ["a", "b"], usageLimit: 0, createdAt: 1)
        var new = old
        new.revoked = true
        new.autoGroups = ["b", "c"]
        let save = AuditLog.describe(.setupKeyUpdated(SetupKeyUpdated(old: old, new: new)))
        #expect(save.map(\.code) == ["setupkey.revoke", "setupkey.group.delete", "setupkey.group.add"])
        #expect(save.dropFirst().map { $0.meta["group_id"] } == ["a", "c"])
        #expect(save.allSatisfy { $0.meta["old_revoked"] == "false" && $0.meta["new_revoked"] == "true" })
        // An event that reads as one entry keeps its target from the event's metadata.
        #expect(AuditLog.describe(.tenantCreated(TenantCreated(name: "x"))).map(\.target) == [nil])
    }
}
