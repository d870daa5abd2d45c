import HTTPTypes
import Hummingbird

extension RoutesController {
    /// Wildcard domains (`*.example.com`) are refused for new and changed routes: the agent resolves exact names with the
    /// system resolver and cannot learn which names under a wildcard its host looks up, so such a route would install
    /// nothing. Routes stored before this rule keep their wildcards (events stay as written); their agents list the name as
    /// unsupported and install no route for it.
    static func refuseWildcardDomains(_ domains: [String]?) throws {
        for d in domains ?? [] where d.hasPrefix("*") {
            throw APIError(.unprocessable,
                           "invalid domains: \(d): wildcard domains are not supported (the agent resolves exact names only); list each name",
                           field: "domains")
        }
    }
}
