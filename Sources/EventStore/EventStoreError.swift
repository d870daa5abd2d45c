import PostgresClient

/// What can go wrong talking to the event store: the PostgreSQL client's errors, plus `conflict` (the tenant
/// moved on since it was read).
public typealias EventStoreError = PostgresError
