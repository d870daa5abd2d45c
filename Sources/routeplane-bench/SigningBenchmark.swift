import ViewDistribution

/// Micro-benchmark of signed views, printed by `routeplane-bench model`: what signing adds to the relay's
/// work per published message and what verification adds to the agent's work per received message, each next to the
/// same work without it, on a view of `viewBytes` bytes. No I/O.
func runSigningBenchmark(viewBytes: Int = 1_200, messages: Int = 5_000) -> [String] {
    let clock = ContinuousClock()
    let signer = ViewSigner.ephemeral()
    let verifier = try! ViewVerifier(pinnedKey: signer.publicKey)
    let filler = String(repeating: "x", count: max(0, viewBytes - 40))
    let view = Array(#"{"forwards":[],"ha_sets":[],"peer_id":"\#(filler)"}"#.utf8)
    let digest = SHA256Digest.hex(view)
    let n = max(messages, 1)
    func perMessage(_ body: () -> Int) -> Double {
        _ = body()   // warm-up
        let t = clock.now
        var sink = 0
        sink &+= body()
        let d = clock.now - t
        if sink == -1 { print(sink) }
        return (Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12) / Double(n)
    }
    func us(_ x: Double) -> String {
        let r = (x * 10).rounded() / 10
        return "\(r)"
    }

    let sign = perMessage {
        var total = 0
        for i in 0..<n { total &+= signer.sign(tenant: "t-bench", peer: "p-bench", version: Int64(i + 1), removed: false, digest: digest).signature.utf8.count }
        return total
    }
    let messageID = perMessage {
        var total = 0
        for i in 0..<n { total &+= signer.messageID(tenant: "t-bench", peer: "p-bench", version: Int64(i + 1), digest: digest).utf8.count }
        return total
    }
    // The relay's per-message work in a batch: envelope, message id, bytes. Unsigned baseline: the same with a signature
    // made once outside the loop (so only the signing differs).
    let fixed = signer.sign(tenant: "t-bench", peer: "p-bench", version: 1, removed: false, digest: digest)
    let relaySigned = perMessage {
        var total = 0
        for i in 0..<n {
            let e = ViewEnvelope(tenant: "t-bench", peer: "p-bench", version: Int64(i + 1), digest: digest, removed: false, createdAtMillis: 1,
                                 view: view, signedBy: signer)
            total &+= e.encoded().count &+ e.messageID(using: signer).utf8.count
        }
        return total
    }
    let relayBaseline = perMessage {
        var total = 0
        for i in 0..<n {
            let e = ViewEnvelope(tenant: "t-bench", peer: "p-bench", version: Int64(i + 1), digest: digest, removed: false, createdAtMillis: 1,
                                 view: view, signature: fixed)
            total &+= e.encoded().count &+ "t-bench:p-bench:\(i + 1)".utf8.count
        }
        return total
    }
    // The agent's per-message work: decode (strict JSON, recipient, SHA-256 of the view), then the signature check.
    let payloads = (0..<min(n, 500)).map { i in
        ViewEnvelope(tenant: "t-bench", peer: "p-bench", version: Int64(i + 1), digest: digest, removed: false, createdAtMillis: 1,
                     view: view, signedBy: signer).encoded()
    }
    let decodeOnly = perMessage {
        var total = 0
        for i in 0..<n { total &+= ((try? ViewEnvelope.decode(payloads[i % payloads.count], expectedTenant: "t-bench", expectedPeer: "p-bench"))?.view.count ?? 0) }
        return total
    }
    let decodeAndVerify = perMessage {
        var total = 0
        for i in 0..<n {
            if let e = try? ViewEnvelope.decode(payloads[i % payloads.count], expectedTenant: "t-bench", expectedPeer: "p-bench"),
               (try? verifier.verify(e)) != nil {
                total &+= e.view.count
            }
        }
        return total
    }
    let unsignedSize = payloads[0].count - (#","key":"","signature":"""#.utf8.count + fixed.key.utf8.count + fixed.signature.utf8.count)
    return [
        "signed views (Ed25519 + HMAC-SHA256 message id), \(n) messages, view \(view.count) bytes, envelope \(payloads[0].count) bytes (+\(payloads[0].count - unsignedSize) for key and signature):",
        "    relay per message: sign \(us(sign)) us, message id \(us(messageID)) us; envelope + id + bytes \(us(relaySigned)) us signed vs \(us(relayBaseline)) us unsigned",
        "    agent per message: decode + SHA-256 \(us(decodeOnly)) us; + Ed25519 verify \(us(decodeAndVerify)) us (verify alone ≈ \(us(decodeAndVerify - decodeOnly)) us)",
    ]
}
