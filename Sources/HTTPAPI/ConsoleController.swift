import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ViewDistribution

/// The web console: `GET /` (its page) and `GET /console/<version>/<file>` (its scripts and style sheet), served from
/// bytes compiled into the binary (`PackageResources`, SwiftPM's `.embedInCode` resources of `Console/`), so a
/// controller serves it offline, from any working directory, with nothing next to the binary.
///
/// No credentials: the console is a client of the REST API with a token the user pastes (kept in the tab's
/// `sessionStorage`); every API call it makes is authenticated, authorized and audited as any other client's.
/// Every answer carries a strict Content-Security-Policy (scripts and styles from this origin only, no inline script,
/// no framing, API calls to this origin only). The page is revalidated on every load (`no-cache` + ETag); the assets
/// live under a path naming the digest of their content, so they are cached for a year and a new binary's page
/// names new paths.
struct ConsoleController: Sendable {
    struct Asset: Sendable {
        var bytes: [UInt8]
        var contentType: String
    }

    /// The assets by file name, as the page refers to them.
    let assets: [String: Asset]
    /// The page, with the asset version filled in.
    let page: [UInt8]
    /// 16 hex digits of SHA-256 over every asset: the path segment the page names and the page's ETag.
    let version: String

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    init() {
        let files: [(String, [UInt8], String)] = [
            ("console.css", PackageResources.console_css, "text/css; charset=utf-8"),
            ("app.js", PackageResources.app_js, "text/javascript; charset=utf-8"),
            ("api.js", PackageResources.api_js, "text/javascript; charset=utf-8"),
            ("ui.js", PackageResources.ui_js, "text/javascript; charset=utf-8"),
            ("routes.js", PackageResources.routes_js, "text/javascript; charset=utf-8"),
            ("pages.js", PackageResources.pages_js, "text/javascript; charset=utf-8"),
            ("audit.js", PackageResources.audit_js, "text/javascript; charset=utf-8"),
            ("history.js", PackageResources.history_js, "text/javascript; charset=utf-8"),
            ("dryrun.js", PackageResources.dryrun_js, "text/javascript; charset=utf-8"),
        ]
        var all: [UInt8] = PackageResources.index_html
        for (name, bytes, _) in files { all += Array(name.utf8) + [0] + bytes }
        let version = String(SHA256Digest.hex(all).prefix(16))
        self.version = version
        assets = Dictionary(uniqueKeysWithValues: files.map { ($0.0, Asset(bytes: $0.1, contentType: $0.2)) })
        page = Array(String(decoding: PackageResources.index_html, as: UTF8.self)
            .replacingOccurrences(of: "{{version}}", with: version).utf8)
    }

    func addRoutes(to router: Router<APIRequestContext>) {
        router.get("/", use: index)
        router.get("/console/:version/:file", use: asset)
    }

    @Sendable func index(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        respond(request, bytes: page, contentType: "text/html; charset=utf-8", etag: "\"\(version)\"", cacheControl: "no-cache")
    }

    /// Only the current version's files: an old page's asset path (another binary's) is 404, so a stale page reloads
    /// rather than mixing versions.
    @Sendable func asset(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        guard context.parameters.get("version") == version, let name = context.parameters.get("file"), let asset = assets[name] else {
            throw APIError(.notFound, "no such console file: \(request.uri.path)")
        }
        return respond(request, bytes: asset.bytes, contentType: asset.contentType, etag: "\"\(version)\"",
                       cacheControl: "public, max-age=31536000, immutable")
    }

    func respond(_ request: Request, bytes: [UInt8], contentType: String, etag: String, cacheControl: String) -> Response {
        var headers: HTTPFields = [
            .contentType: contentType,
            .cacheControl: cacheControl,
            .eTag: etag,
            .contentSecurityPolicy: Self.contentSecurityPolicy,
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
            HTTPField.Name("X-Frame-Options")!: "DENY",
        ]
        if request.headers[.ifNoneMatch]?.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) == true {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
