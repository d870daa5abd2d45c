import AgentCommandLine
import ArgumentParser

/// `routeplane-agent`: the agent alone (`routeplane agent`'s options, state folder and behaviour), linked without the
/// controller's modules so that it maps and touches less memory on every peer.
@main
enum RouteplaneAgent {
    static func main() async {
        await Agent.main()
    }
}
