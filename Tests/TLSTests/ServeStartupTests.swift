import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// `routeplane serve` started while PostgreSQL is down: it waits (logging what for), answers 503 + Retry-After
/// meanwhile with /healthz saying why, and serves once the database is up (migrated at that moment).
@Suite(.timeLimit(.minutes(5)), .serialized) struct ServeStartupTests {
    struct Answer {
        var status: Int
        var retryAfter: String?
        var body: String
    }

    static func get(_ url: String) async -> Answer? {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 64 * 1024)
            return Answer(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"), body: String(buffer: body))
        } catch {
            return nil
        }
    }

    @Test func serveWaitsForPostgresAndAnswers503Meanwhile() async throws {
        let name = "serve-wait-test", pgPort = 25448
        let server = try await PrivatePostgres.start(name: name, port: pgPort)
        try await server.stop()
        let port = CommandLineTLSTests.freePort()
        let child = try CommandLineTLSTests.Child.start(["serve", "--database-url", server.url, "--host", "127.0.0.1", "--port", "\(port)"])
        do {
            let base = "http://127.0.0.1:\(port)"
            // Listening at once, the database down: 503 everywhere, /healthz says what it waits for.
            #expect(await eventually(timeout: .seconds(60)) { await Self.get(base + "/healthz")?.status == 503 }, "\(child.text)")
            let health = await Self.get(base + "/healthz")
            #expect(health?.body.contains("waiting for PostgreSQL") == true, "\(health?.body ?? "")")
            #expect(health?.retryAfter == "2")
            let routes = await Self.get(base + "/api/routes")
            #expect(routes?.status == 503 && routes?.retryAfter == "2", "\(routes?.body ?? "")")
            #expect(routes?.body.contains("\"code\":503") == true)
            #expect(await eventually(timeout: .seconds(30)) { child.text.contains("PostgreSQL does not answer yet") }, "\(child.text)")
            // The database comes up: migrated, then served.
            _ = try await PrivatePostgres.start(name: name, port: pgPort)
            #expect(await eventually(timeout: .seconds(60)) { await Self.get(base + "/healthz")?.status == 200 }, "\(child.text)")
            #expect(await Self.get(base + "/api/routes")?.status == 401, "the API answers (no token)")
            #expect(child.text.contains("PostgreSQL answers; migrations applied"))
        } catch {
            _ = await child.stop(); child.remove(); try? await server.stop()
            throw error
        }
        #expect(await child.stop() == 0)
        child.remove()
        try await server.stop()
    }

    @Test func serveGivesUpAfterTheDatabaseWaitWhenAsked() async throws {
        let child = try CommandLineTLSTests.Child.start(["serve", "--database-url", "postgresql://nobody@127.0.0.1:1/none", "--port",
                                                         "\(CommandLineTLSTests.freePort())", "--database-wait-seconds", "2"])
        defer { child.remove() }
        #expect(await child.exitCode(timeout: .seconds(60)) != 0)
        #expect(child.text.contains("PostgreSQL did not answer within --database-wait-seconds"), "\(child.text)")
    }

    @Test func theLostWriteSwitchNeedsItsSecondSwitch() async throws {
        let child = try CommandLineTLSTests.Child.start(["serve", "--database-url", "postgresql://nobody@127.0.0.1:1/none", "--port", "1",
                                                         "--test-lose-write", "3"])
        defer { child.remove() }
        #expect(await child.exitCode() != 0)
        CommandLineTLSTests.expectCleanError(child.text, mentioning: ["--i-know-this-loses-data"])
    }
}
