import EventStore
import Projections

/// Runs the projection of one tenant to its head, as `routeplane serve`'s runner does.
struct ProjectionRunnerHandle {
    let store: EventStore
    func catchUp(tenant: String) async throws {
        _ = try await ProjectionRunner(store: store).catchUp(tenant: tenant)
    }
}
