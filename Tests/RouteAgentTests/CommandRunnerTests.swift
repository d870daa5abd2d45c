import RouteAgent
import Testing

@Suite(.timeLimit(.minutes(10))) struct CommandRunnerTests {
    let runner = CommandRunner()

    @Test func feedsStdinAndCapturesBothStreams() async throws {
        let big = String(repeating: "0123456789abcdef\n", count: 20_000) // 340 kB: more than a pipe buffer both ways
        let r = try await runner.run(["cat"], input: big, timeout: .seconds(10))
        #expect(r.succeeded && r.stdout == big && r.stderr.isEmpty)
        let e = try await runner.run(["sh", "-c", "echo out; echo err >&2; exit 3"], input: nil, timeout: .seconds(10))
        #expect(e.status == 3 && e.stdout == "out\n" && e.stderr == "err\n")
    }

    @Test func killsAtTheTimeout() async throws {
        // A behaviour check, not a timing one: the child would sleep 60 s; the runner must kill it long before
        // (the bound only has to tell "killed" from "ran to the end", so a loaded CI machine cannot break it).
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: CommandError.self) {
            _ = try await runner.run(["sleep", "60"], input: nil, timeout: .milliseconds(200))
        }
        #expect(clock.now - start < .seconds(30))
    }

    @Test func childThatStopsReadingDoesNotKillUs() async throws {
        // `true` exits at once: writing to its stdin hits EPIPE, which must not raise SIGPIPE here.
        let r = try await runner.run(["true"], input: String(repeating: "x", count: 1 << 20), timeout: .seconds(10))
        #expect(r.succeeded)
    }

    @Test func missingProgram() async throws {
        await #expect(throws: CommandError.notFound("routeplane-no-such-program")) {
            _ = try await runner.run(["routeplane-no-such-program"], input: nil, timeout: .seconds(1))
        }
        #expect(CommandRunner.resolve("sh") != nil)
    }
}
