import BenchKit
import CommandSupport
import Foundation
import Synchronization

/// Progress of the benchmarks' long phases, on standard error (standard output keeps only the tables):
/// a bar redrawn in place when standard error is a terminal, plain `  … phase` lines otherwise (at most
/// one every 5 s per phase for counted progress).
final class BenchProgress: Sendable {
    private struct State {
        var label = ""
        var done = 0
        var total: Int?
        var started = ContinuousClock.now
        var lastPlain = ContinuousClock.now - .seconds(60)
        var active = false
        var drawnWidth = 0
        var ticker: Task<Void, Never>?
    }

    private let state = Mutex(State())
    let isTerminal: Bool
    let enabled: Bool

    init(enabled: Bool = true) {
        self.enabled = enabled
        isTerminal = isatty(STDERR_FILENO) == 1
    }

    /// A new phase; `total` when its steps can be counted.
    func begin(_ label: String, total: Int? = nil) {
        guard enabled else { return }
        let startTicker = state.withLock { s -> Bool in
            s.label = label
            s.done = 0
            s.total = total
            s.started = .now
            s.lastPlain = .now
            let first = !s.active
            s.active = true
            return first && isTerminal
        }
        if isTerminal {
            if startTicker {
                // Keeps the elapsed time moving while a phase waits; ends with `end()` (bounded by it).
                let ticker = Task { [weak self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(250))
                        self?.draw()
                    }
                }
                state.withLock { $0.ticker = ticker }
            }
            draw()
        } else {
            write("  … " + label + (total.map { " (\($0) steps)" } ?? "") + "\n")
        }
    }

    /// Counted progress within the phase.
    func update(done: Int, total: Int? = nil) {
        guard enabled else { return }
        let plain = state.withLock { s -> String? in
            s.done = done
            if let total { s.total = total }
            guard !isTerminal, ContinuousClock.now - s.lastPlain >= .seconds(5) else { return nil }
            s.lastPlain = .now
            return "  … \(s.label): \(done)" + (s.total.map { "/\($0)" } ?? "") + "\n"
        }
        if isTerminal { draw() } else if let plain { write(plain) }
    }

    /// A message from a measurement (e.g. propagation's phases): becomes the current phase's label.
    func note(_ line: String) {
        begin(line)
    }

    /// As a closure, for `measure(progress:)` functions that report phases as text.
    var reporter: @Sendable (String) -> Void { { [self] line in note(line) } }

    /// Clears the bar (on a terminal) at the end of a part, before its table is printed.
    func end() {
        guard enabled else { return }
        let (ticker, width) = state.withLock { s -> (Task<Void, Never>?, Int) in
            defer {
                s.active = false
                s.ticker = nil
                s.drawnWidth = 0
            }
            return (s.ticker, s.drawnWidth)
        }
        ticker?.cancel()
        if isTerminal && width > 0 { write("\r" + String(repeating: " ", count: width) + "\r") }
    }

    private func draw() {
        let line = state.withLock { s -> String? in
            guard s.active else { return nil }
            let elapsed = ContinuousClock.now - s.started
            var text = ProgressLine.render(label: s.label, done: s.done, total: s.total,
                                           elapsedSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            let columns = Self.terminalColumns()
            if text.count > columns - 1 { text = String(text.prefix(columns - 1)) }
            let padding = max(0, s.drawnWidth - text.count)
            s.drawnWidth = text.count
            return "\r" + text + String(repeating: " ", count: padding)
        }
        if let line { write(line) }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func terminalColumns() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        return 100
    }
}

extension DatabaseOptions {
    /// What the `run()` of a bench command that measures once does around its measurement: the debug-build note,
    /// logging at `--log-level`, progress on standard error while it measures, then its figures' lines.
    func runMeasurement<Figures>(_ measure: (BenchProgress) async throws -> Figures, lines: (Figures) -> [String]) async throws {
        #if DEBUG
        print("note: debug build; `swift build -c release` gives representative figures")
        #endif
        bootstrapLogging(level: logLevel)
        let progress = BenchProgress()
        let figures = try await measure(progress)
        progress.end()
        for line in lines(figures) { print(line) }
    }
}
