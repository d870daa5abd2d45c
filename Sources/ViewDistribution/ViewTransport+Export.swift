/// The view parts without PostgreSQL (envelopes, signatures, subjects, the feed, acks, bus permissions, status reports)
/// live in ViewTransport so that the agent links them without libpq; every importer of ViewDistribution still sees them.
@_exported import ViewTransport
