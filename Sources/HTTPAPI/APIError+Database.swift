import PostgresClient

extension APIError {
    /// The database refusals an API answers without a 500: a statement cut by the request's `statement_timeout` and a
    /// pool that stayed busy past the lease deadline, both `503` + `Retry-After` (the work can succeed when retried);
    /// nil for other errors. The libpq text stays in the operator's log (the 503 log line has the request id).
    init?(database error: PostgresError) {
        if error.isStatementTimeout {
            self.init(.unavailable, "the database took longer than this controller allows for one request; retry shortly", retryAfter: 2)
        } else if case .poolBusy = error {
            self.init(.unavailable, "the controller is busy; retry shortly", retryAfter: 1)
        } else {
            return nil
        }
    }
}
