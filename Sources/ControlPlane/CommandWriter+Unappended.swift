import RouteModel

extension CommandWriter {
    /// The result a write would have, decided as `write` decides it (latest snapshot, `If-Match`, quotas, the built-in
    /// group's repair) and appended nowhere. For the test-only lost-write switch, which answers it as if it committed.
    public func unappended(tenant: String, ifMatch object: ObjectRef?, ifMatchVersion: Int64?,
                           decide: @escaping @Sendable (TenantSnapshot) throws -> [RouteEvent]) async throws -> WriteResult {
        let before = try await cache.current(tenant)
        if let object, let ifMatchVersion { try Self.check((object, ifMatchVersion), before) }
        let events = try Self.withAllGroup(decide, quotas: quotas)(before)
        var after = before
        for (i, event) in events.enumerated() { after.apply(event, sequence: before.version + Int64(i) + 1) }
        return WriteResult(snapshot: after, events: events,
                           sequences: events.isEmpty ? nil : (before.version + 1)...(before.version + Int64(events.count)))
    }
}
