// Over 500 lines on purpose: the agent's I/O shell is one actor whose methods all touch its state (NATS, HTTP, probes,
// status); its bus credentials live in AgentRunner+BusCredentials.swift.
import Foundation
import Logging
import ViewTransport
import NATSAuth
import NATSClient
import Synchronization
import RouteModel
import RouteSelection

/// Settings of `routeplane agent`.
public struct AgentConfiguration: Sendable {
    public var controller: String
    public var setupKey: String?
    public var stateFolder: String
    public var name: String
    public var os: String
    /// Mesh IP to report at enrollment (allocated by the controller when nil).
    public var ip: String?
    /// Overrides the NATS URL the controller gave at enrollment.
    public var natsURL: String?
    /// A NATS credentials file (per-agent JWT and seed) once the deployment issues them.
    public var natsCredentials: String?
    public var statusInterval: Duration
    /// How often the view is read over HTTP while NATS is not connected.
    public var httpFallbackInterval: Duration
    public var machine: AgentStateMachine.Configuration
    /// Probe candidates over UDP (nil: no probes; with `assumeCandidatesUp` for simulated agents).
    public var probe: HealthProbeConfiguration?
    /// Answer other agents' probes on our mesh address.
    public var answerProbes: Bool
    /// Called with every view the agent applies, after it is persisted (an observer: e.g. `routeplane-chaos`
    /// records each agent's applied versions to check that none ever goes back).
    public var viewApplied: (@Sendable (AgentStateMachine.ViewUpdate) -> Void)? = nil
    /// Clear text allowed or not, and the CA files for HTTPS and NATS over TLS (checked when the runner is created).
    public var transport = AgentTransport()
    /// The WireGuard key and endpoints reported at enrollment (nil: the agent runs no WireGuard).
    public var wireguard: WireGuardIdentity? = nil
    /// Run once the identity is known, before health probes are answered (the WireGuard applier brings its interface up
    /// with the mesh address here, so the responder can bind to it).
    public var prepare: (@Sendable (AgentIdentity) async throws -> Void)? = nil

    public init(controller: String, setupKey: String?, stateFolder: String, name: String, os: String = "linux", ip: String? = nil,
                natsURL: String? = nil, natsCredentials: String? = nil, statusInterval: Duration = .seconds(5), httpFallbackInterval: Duration = .seconds(10),
                machine: AgentStateMachine.Configuration = .init(), probe: HealthProbeConfiguration? = HealthProbeConfiguration(),
                answerProbes: Bool = true) {
        self.controller = controller
        self.setupKey = setupKey
        self.stateFolder = stateFolder
        self.name = name
        self.os = os
        self.ip = ip
        self.natsURL = natsURL
        self.natsCredentials = natsCredentials
        self.statusInterval = statusInterval
        self.httpFallbackInterval = httpFallbackInterval
        self.machine = machine
        self.probe = probe
        self.answerProbes = answerProbes
    }
}

/// The agent's shell: enrolls (once), applies the persisted view, follows its NATS subject (last
/// message, live messages, re-read after reconnects), falls back to HTTP while NATS is down, probes
/// candidates, publishes status. Every decision is `AgentStateMachine`'s; this only performs actions.
public actor AgentRunner {
    enum Input: Sendable {
        /// `streamLast`: the stream's last message (read at start, after a reconnect, periodically), not a live one.
        case view(AgentStateMachine.ViewUpdate, streamLast: Bool = false)
        case probe(ProbeHealth)
        case tick
        case publishStatus
        /// A message that is not an acceptable view (before any signature check: unparseable, unsigned envelope, …).
        case rejected(reason: String, detail: String, streamLast: Bool = false)
        case nats(connected: Bool)
        /// The system resolver's outcome for a domain route's name (AgentRunner+Routes.swift).
        case domainResolved(String, DomainResolutionStateMachine.Outcome)
    }

    public let configuration: AgentConfiguration
    let applier: any RouteApplier
    let logger: Logger
    let folder: AgentStateFolder
    public private(set) var identity: AgentIdentity?
    var machine: AgentStateMachine
    var connection: NATSConnection?
    /// The filter rules' counters as last read (published in the status message).
    var forwardCounters: [ForwardCounter] = []
    var natsConnected = false
    var prober: HealthProber?
    var responder: HealthResponder?
    var probeIDs: [String: PeerID] = [:]
    /// The key views must be signed with (from the identity); nil: every view is refused.
    var verifier: ViewVerifier?
    /// View messages (NATS or HTTP) refused: unparseable, unsigned, wrongly signed, … The current routes stay.
    public private(set) var rejectedMessages = 0
    /// Where the last applied view came from.
    public private(set) var lastViewSource: AgentStateMachine.ViewUpdate.Source?
    /// Views applied since start, by where they came from.
    public private(set) var appliedBySource: [AgentStateMachine.ViewUpdate.Source: Int] = [:]
    /// NATS user JWTs obtained from the controller since start (renewals).
    public internal(set) var busRenewals = 0
    public var isNATSConnectedNow: Bool { natsConnected }
    /// Times the NATS connection was lost since start (server restarts, expired JWTs, network).
    public private(set) var natsDisconnects = 0
    /// `rejectedMessages` by reason (`unsigned`, `bad_signature`, `unknown_key`, `digest_mismatch`, …), plus refusals
    /// of the persisted view at start.
    public private(set) var rejectedByReason: [String: Int] = [:]
    /// Why the persisted view was refused at start (nil: none was, or there was none).
    public private(set) var persistedViewRefused: String?
    /// The stream's last message was refused (e.g. someone published a forgery after the real view): it may hide a newer
    /// real view, so the HTTP fallback reads the view too, even with NATS connected, until the controller answers.
    var streamLastRejected = false
    public private(set) var applyFailures = 0
    let inputs: AsyncStream<Input>
    let input: AsyncStream<Input>.Continuation
    /// The agent's NATS user key (seed in the state folder) and its current JWT, read by libnats at every (re)connect.
    let bus = BusCredentialState()
    /// The user's route selection file and the route listing the agent writes (AgentRunner+Routes.swift).
    var routeFiles = RouteFilesState()

    public init(configuration: AgentConfiguration, applier: any RouteApplier, logger: Logger = Logger(label: "routeplane.agent")) throws {
        try configuration.transport.check(controller: configuration.controller, nats: configuration.natsURL)
        self.configuration = configuration
        self.applier = applier
        self.logger = logger
        self.folder = try AgentStateFolder(path: configuration.stateFolder)
        self.machine = AgentStateMachine(configuration: configuration.machine)
        (inputs, input) = AsyncStream<Input>.makeStream(bufferingPolicy: .unbounded)
    }

    /// The applied view's version (0 before the first).
    public var appliedVersion: Int64 { machine.appliedVersion }
    public var appliedView: PeerRouteView? { machine.view }
    public var counters: AgentStateMachine.Counters { machine.counters }
    public var desired: DesiredRouteState { machine.desired }
    /// HA sets of the view not installed because another network id's HA set with the same destination is.
    public var shadowed: [ShadowedRouteStatus] { machine.shadowed }

    /// Enrolls when the state folder has no identity yet; otherwise uses the stored one.
    public func loadOrEnroll() async throws -> AgentIdentity {
        if let stored = try folder.loadIdentity() {
            adopt(stored)
            return stored
        }
        guard let key = configuration.setupKey else {
            throw AgentError.enrollment("no identity in \(configuration.stateFolder) and no setup key to enroll with (--setup-key-file or ROUTEPLANE_SETUP_KEY)")
        }
        let natsKey = try folder.createNATSKey()
        // A controller refusing for the rate (429: many agents enrolling from one address or with one key) is asked again
        // after 2, 4, 8, 16, then 30 s (about 2½ minutes in all) before the agent gives up.
        let waits = [2, 4, 8, 16, 30, 30, 30, 30]
        var attempt = 0
        var enrollment: (AgentIdentity, ControllerClient.BusCredentials?)?
        while enrollment == nil {
            do {
                enrollment = try await configuration.controllerClient.enroll(
                    setupKey: key, name: configuration.name, os: configuration.os, ip: configuration.ip, natsPublicKey: natsKey.publicKey,
                    wireguard: configuration.wireguard)
            } catch AgentError.enrollmentRateLimited(let message) where attempt < waits.count {
                logger.notice("enrollment refused for its rate; asking again",
                              metadata: ["controller": "\(configuration.controller)", "wait_s": "\(waits[attempt])", "message": "\(message)"])
                try await Task.sleep(for: .seconds(waits[attempt]))
                attempt += 1
            }
        }
        guard let (enrolled, issued) = enrollment else { throw AgentError.enrollment("no enrollment") }
        if let issued {
            try folder.saveNATSJWT(issued.jwt)
        }
        try folder.save(enrolled)
        logger.notice("enrolled", metadata: ["peer_id": "\(enrolled.peerID)", "tenant_id": "\(enrolled.tenantID)", "ip": "\(enrolled.ip)",
                                             "view_signing_key": "\(enrolled.viewSigningKey ?? "none")"])
        adopt(enrolled)
        return enrolled
    }

    /// Takes the identity and its pinned view signing key.
    private func adopt(_ identity: AgentIdentity) {
        self.identity = identity
        verifier = identity.viewSigningKey.flatMap { try? ViewVerifier(pinnedKey: $0) }
        if verifier == nil {
            logger.error("no usable view signing key in the identity (enrolled before views were signed, or edited): every view will be refused; re-enroll this agent (remove identity.json from the state folder and start it with --setup-key)",
                         metadata: ["state_folder": "\(configuration.stateFolder)", "view_signing_key": "\(identity.viewSigningKey ?? "none")"])
        }
    }

    /// Checks `update`'s signature against the pinned key (the pure `ViewVerifier.verify`), before it reaches the state
    /// machine. A view signed by a new key that the pinned key endorsed pins the new key (saved in identity.json).
    /// False: refused, logged once and counted; routes and the persisted view stay as they are.
    func authenticate(_ update: AgentStateMachine.ViewUpdate) -> Bool {
        guard let identity else { return false }
        do throws(ViewSignatureError) {
            guard let verifier else { throw .noPinnedKey }
            let next = try verifier.verify(tenant: identity.tenantID, peer: identity.peerID, version: update.version, removed: update.removed,
                                           digest: update.digest, signature: update.signature)
            if next != verifier { pin(next) }
            return true
        } catch {
            if update.source == .persisted {
                refusePersisted(reason: error.reason, detail: error.description)
            } else {
                reject(reason: error.reason, detail: "\(error.description) (view version \(update.version) from \(update.source.rawValue))")
            }
            return false
        }
    }

    private func pin(_ next: ViewVerifier) {
        let previous = verifier?.pinnedKey ?? "none"
        verifier = next
        guard var updated = identity else { return }
        updated.viewSigningKey = next.pinnedKey
        identity = updated
        do {
            try folder.save(updated)
            logger.notice("pinned a new view signing key (endorsed by the pinned one)", metadata: ["previous": "\(previous)", "key": "\(next.pinnedKey)"])
        } catch {
            logger.error("pinned a new view signing key but could not save it", metadata: ["key": "\(next.pinnedKey)", "error": "\(error)"])
        }
    }

    /// Counts every rejection; logs the first of each minute with how many were not logged since (a peer can be sent
    /// rejected messages on purpose: another agent may name this peer's subject as the reply of its own direct get).
    private func reject(reason: String, detail: String) {
        rejectedMessages += 1
        rejectedByReason[reason, default: 0] += 1
        let now = ContinuousClock.now
        if let last = lastRejectionLog, now - last < .seconds(60) {
            unloggedRejections += 1
            return
        }
        lastRejectionLog = now
        logger.warning("rejected a view message; keeping the current routes",
                       metadata: ["reason": "\(reason)", "detail": "\(detail)", "applied_version": "\(machine.appliedVersion)",
                                  "not_logged_since_last": "\(unloggedRejections)"])
        unloggedRejections = 0
    }
    private var lastRejectionLog: ContinuousClock.Instant?
    private var unloggedRejections = 0

    private func refusePersisted(reason: String, detail: String) {
        persistedViewRefused = reason
        rejectedByReason["persisted_" + reason, default: 0] += 1
        logger.error("refused the persisted view (tampered, unsigned or signed by another key); not applying it, waiting for NATS or the controller",
                     metadata: ["reason": "\(reason)", "detail": "\(detail)", "file": "\(configuration.stateFolder)/view"])
    }

    /// Runs until the task is cancelled. Starts from the persisted view (so routes are in place even with the
    /// controller and NATS unreachable), then follows NATS, with HTTP as the fallback.
    public func run() async throws {
        let identity = try await loadOrEnroll()
        if let prepare = configuration.prepare { try await prepare(identity) }
        await loadRouteChoices()
        if configuration.natsCredentials == nil {
            bus.set(key: try folder.loadOrCreateNATSKey(), jwt: folder.loadNATSJWT())
        }
        do {
            if let persisted = try folder.loadView() {
                let view = persisted.removed ? nil : try? JSONDecoder().decode(PeerRouteView.self, from: Data(persisted.body))
                if persisted.removed || view != nil {
                    await handle(.view(.init(version: persisted.version, digest: persisted.digest, body: persisted.body, view: view,
                                             source: .persisted, signature: persisted.signature)))
                } else {
                    refusePersisted(reason: "not_a_route_view", detail: "the persisted view does not decode as a route view")
                }
            }
        } catch {
            refusePersisted(reason: "unreadable", detail: "\(error)")
        }
        if configuration.answerProbes, let address = try? IPAddress(parsing: identity.ip) {
            do {
                let r = try HealthResponder(address: address, port: configuration.probe?.port ?? HealthProbeConfiguration.defaultPort)
                r.start()
                responder = r
            } catch {
                logger.warning("not answering health probes", metadata: ["address": "\(identity.ip)", "error": "\(error)"])
            }
        }
        if let probeConfiguration = configuration.probe {
            let p = try HealthProber(configuration: probeConfiguration)
            p.start()
            prober = p
            // The persisted view was applied before the prober existed: give it that view's candidates now (otherwise
            // nothing is probed until the view changes, and a restart with an unchanged view never chooses a peer).
            if let view = machine.view { await perform([.probe(AgentStateMachine.candidates(of: view.haSets))]) }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.followNATS(identity) }
            if self.configuration.natsCredentials == nil {
                group.addTask { await self.renewBusCredentials(identity) }
            }
            group.addTask { await self.httpFallback(identity) }
            group.addTask { await self.ticks() }
            if let prober = self.prober {
                group.addTask {
                    for await health in prober.events { self.enqueue(.probe(health)) }
                }
            }
            group.addTask {
                for await event in self.inputs {
                    if Task.isCancelled { break }
                    await self.handle(event)
                }
            }
            await withTaskCancellationHandler {
                await group.next()
            } onCancel: {
                self.input.finish()
            }
            group.cancelAll()
        }
        prober?.stop()
        responder?.stop()
        await connection?.close()
    }

    /// Removes what the applier added (`--cleanup`, and graceful exit keeping keep_route routes).
    public func cleanup(keepRoutes: Bool) async throws {
        let report = try await applier.cleanup(keepRoutes: keepRoutes)
        logger.notice("cleaned up", metadata: ["actions": "\(report.actions.count)", "kept_keep_routes": "\(keepRoutes)"])
    }

    nonisolated func enqueue(_ event: Input) { input.yield(event) }

    func handle(_ event: Input) async {
        let now = ContinuousClock.now
        var actions: [AgentStateMachine.Action] = []
        switch event {
        case .view(let update, let streamLast):
            guard authenticate(update) else {
                if streamLast { streamLastRejected = true }
                return
            }
            if streamLast { streamLastRejected = false }
            actions = machine.receive(update, now: now)
        case .probe(let health):
            guard let peer = probeIDs[health.target.id] else { return }
            actions = machine.healthObserved([peer: health.selectionHealth], now: now)
        case .tick:
            // The prober reports reachability changes as events; RTTs only change in its picture. Feed
            // that picture each tick so latency-only changes are re-evaluated (with the hysteresis).
            if let prober {
                var snapshot: [PeerID: PeerHealth] = [:]
                for h in prober.health() { if let peer = probeIDs[h.target.id] { snapshot[peer] = h.selectionHealth } }
                if !snapshot.isEmpty { actions = machine.healthObserved(snapshot, now: now) }
            }
            actions += machine.tick(now: now)
            actions += routeChoicesTick(now: now)
        case .domainResolved(let name, let outcome):
            actions = machine.domainResolved(name, outcome, now: now)
        case .publishStatus: actions = [.publishStatus]
        case .rejected(let reason, let detail, let streamLast):
            reject(reason: reason, detail: detail)
            if streamLast { streamLastRejected = true }
        case .nats(let connected):
            if connected != natsConnected { logger.notice(connected ? "NATS connected" : "NATS disconnected") }
            if natsConnected && !connected { natsDisconnects += 1 }
            natsConnected = connected
        }
        await perform(actions)
        writeRouteListingIfChanged()
    }

    func perform(_ actions: [AgentStateMachine.Action]) async {
        for action in actions {
            switch action {
            case .persist(let update):
                if update.source != .persisted {
                    do {
                        // Only verified views reach the machine, so the signature is there.
                        guard let signature = update.signature else { throw AgentError.stateFolder("view version \(update.version) has no signature") }
                        try folder.saveView(version: update.version, digest: update.digest, removed: update.removed, signature: signature, body: update.body)
                    } catch {
                        logger.error("could not persist the view", metadata: ["error": "\(error)"])
                    }
                }
                logger.info("view", metadata: ["version": "\(update.version)", "source": "\(update.source.rawValue)"])
                lastViewSource = update.source
                appliedBySource[update.source, default: 0] += 1
                configuration.viewApplied?(update)
            case .apply(let desired):
                do {
                    let report = try await applier.apply(desired)
                    if !report.conflicts.isEmpty {
                        logger.warning("routes not installed: another route has the same destination and metric", metadata: ["conflicts": "\(report.conflicts)"])
                    }
                } catch {
                    applyFailures += 1
                    logger.error("applying routes failed; will retry with the next change", metadata: ["error": "\(error)"])
                }
            case .probe(let targets):
                probeIDs = Dictionary(uniqueKeysWithValues: targets.keys.map { ($0.rawValue, $0) })
                let port = configuration.probe?.port ?? HealthProbeConfiguration.defaultPort
                prober?.setTargets(targets.map { ProbeTarget(id: $0.key.rawValue, address: $0.value, port: port) }.sorted())
            case .publishStatus:
                forwardCounters = await applier.forwardCounters()
                publishStatus()
            case .log(let line):
                logger.notice("\(line)")
            case .resolve(let names):
                resolve(names)
            }
        }
    }

    func publishStatus() {
        guard let identity, let connection, natsConnected else { return }
        var selections: [[String: String]] = []
        for key in machine.selection.keys {
            guard let s = machine.selection.selection(for: key) else { continue }
            selections.append(["network_id": key.networkID, "network": key.destination.description,
                               "peer_id": s.candidate.peerID.rawValue, "status": s.status.rawValue])
        }
        var health: [[String: String]] = []
        for h in prober?.health() ?? [] {
            var entry = ["peer_id": h.target.id, "reachability": h.reachability.rawValue]
            if let rtt = h.smoothedRTT { entry["rtt_us"] = String(rtt.components.seconds * 1_000_000 + rtt.components.attoseconds / 1_000_000_000_000) }
            health.append(entry)
        }
        var status: [String: Any] = [
            "status_version": 1, "tenant_id": identity.tenantID, "peer_id": identity.peerID,
            "applied_version": machine.appliedVersion, "digest": machine.appliedDigest ?? "",
            "selections": selections, "health": health, "shadowed": machine.shadowed.map(\.jsonObject),
            "ignored_older": machine.counters.ignoredOlder, "ignored_duplicate": machine.counters.ignoredDuplicate,
            "rejected": rejectedMessages, "rejected_by_reason": rejectedByReason,
            "forward_counters": forwardCounters.map(\.jsonObject),
        ]
        if let wg = configuration.wireguard { status["wireguard"] = ["public_key": wg.publicKey, "endpoints": wg.endpoints] as [String: Any] }
        guard let payload = try? JSONSerialization.data(withJSONObject: status, options: [.sortedKeys]) else { return }
        do {
            try connection.publish("routeplane.\(identity.tenantID).peer.\(identity.peerID).status", payload: Array(payload))
        } catch {
            logger.debug("status not published", metadata: ["error": "\(error)"])
        }
    }

    func setConnection(_ c: NATSConnection) { connection = c }

    func followNATS(_ identity: AgentIdentity) async {
        guard let url = configuration.natsURL ?? identity.natsURL else {
            logger.warning("no NATS URL (give --nats-url); following the view over HTTP only")
            return
        }
        do {
            try configuration.transport.check(controller: configuration.controller, nats: url)
        } catch {
            logger.error("not connecting to NATS; following the view over HTTP only", metadata: ["nats_url": "\(url)", "error": "\(error)"])
            return
        }
        var backoff = Duration.milliseconds(250)
        var loggedRefusal = false
        while !Task.isCancelled {
            do {
                var natsConfiguration = NATSConfiguration(url: url, name: "routeplane-agent-\(identity.peerID)")
                natsConfiguration.failIfUnreachable = true
                natsConfiguration.tls = configuration.transport.natsTLS(url: url)
                if let file = configuration.natsCredentials {
                    natsConfiguration.credentialsFile = file
                } else {
                    natsConfiguration.userCredentials = bus.credentials
                    natsConfiguration.inboxPrefix = identity.natsInboxPrefix ?? BusPermissions.agentInboxPrefix(peer: identity.peerID)
                }
                let connection = try await NATSConnection.connect(natsConfiguration, logger: logger)
                setConnection(connection)
                enqueue(.nats(connected: true))
                backoff = .milliseconds(250)
                loggedRefusal = false
                let feed = try await ViewFeed.follow(connection: connection, tenant: identity.tenantID, peer: identity.peerID, logger: logger)
                for await event in feed.events {
                    if Task.isCancelled { break }
                    switch event {
                    case .view(let envelope, let origin):
                        let view = envelope.removed ? nil : try? JSONDecoder().decode(PeerRouteView.self, from: Data(envelope.view))
                        if !envelope.removed && view == nil {
                            enqueue(.rejected(reason: "not_a_route_view", detail: "view version \(envelope.version) does not decode as a route view",
                                              streamLast: origin != .live))
                            continue
                        }
                        enqueue(.view(.init(version: envelope.version, digest: envelope.digest, body: envelope.view, view: view, source: .nats,
                                            signature: envelope.signature), streamLast: origin != .live))
                    case .rejected(let error, let origin):
                        enqueue(.rejected(reason: error.reason, detail: error.description, streamLast: origin != .live))
                    case .noView:
                        break
                    case .disconnected:
                        enqueue(.nats(connected: false))
                    case .reconnected:
                        enqueue(.nats(connected: true))
                    }
                }
                // The connection closed for good (libnats stops reconnecting after the server refused the same
                // credentials twice, e.g. an expired JWT): renew if needed and connect again.
                feed.cancel()
                enqueue(.nats(connected: false))
                await connection.close()
                if Task.isCancelled { return }
                bus.renewNow()
                logger.notice("NATS connection closed; connecting again")
            } catch {
                enqueue(.nats(connected: false))
                let text = "\(error)"
                if (error as? NATSError)?.isCredentialRefusal == true {
                    // Expired or revoked credentials: renew (the controller refuses a revoked peer), keep the routes.
                    if !loggedRefusal {
                        logger.warning("NATS refused this agent's credentials; renewing them and keeping the current routes", metadata: ["error": "\(text)"])
                        loggedRefusal = true
                    }
                    bus.renewNow()  // ignored while the controller refuses this agent
                } else {
                    logger.debug("NATS not reachable yet", metadata: ["error": "\(text)"])
                }
            }
            // Refused for good (see renewBusCredentials): try again rarely, not every 5 s.
            try? await Task.sleep(for: bus.refused ? .seconds(300) : backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }

    func isNATSConnected() -> Bool { natsConnected }

    func httpFallback(_ identity: AgentIdentity) async {
        let client = configuration.controllerClient
        // Give NATS a moment first; then read over HTTP whenever NATS is not connected, no view was applied yet, or the
        // stream's last message was refused (a forgery published after the real view would otherwise hide it).
        try? await Task.sleep(for: .seconds(2))
        while !Task.isCancelled {
            if !isNATSConnected() || machine.appliedVersion == 0 || streamLastRejected {
                do {
                    let update = try await client.view(credential: identity.credential)
                    // The controller answered: whatever the stream's last message was, this is the current view.
                    streamLastRejected = false
                    if let update { enqueue(.view(update)) }
                } catch let error as ViewEnvelopeError {
                    enqueue(.rejected(reason: error.reason, detail: "\(error.description) (from http)"))
                } catch {
                    logger.debug("HTTP view fallback failed", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: configuration.httpFallbackInterval)
        }
    }

    func ticks() async {
        var sinceStatus = Duration.zero
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            enqueue(.tick)
            sinceStatus += .seconds(1)
            if sinceStatus >= configuration.statusInterval {
                sinceStatus = .zero
                enqueue(.publishStatus)
            }
        }
    }
}
