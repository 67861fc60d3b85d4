import Dispatch
import FlintModels
@testable import FlintServe
import FlintTestSupport
import Hummingbird
import HummingbirdTesting
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client that leaves a non-streamed completion: over a real socket (the in-process router has
/// no connection to lose), with the model held after its first step so the request cannot
/// finish before the client has gone.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct DisconnectTests {
    /// Sends `request` to 127.0.0.1:`port` and returns the open socket.
    static func send(_ request: String, port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "connect to port \(port)")
        let bytes = Array(request.utf8)
        try #require(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
        return fd
    }

    @Test(.enabled(if: Harness.available, serveSkipReason))
    func aNonStreamedCompletionWhoseClientLeavesFreesItsSlot() async throws {
        let model = try Harness.freshTinyGPT2()
        let hold = DispatchSemaphore(value: 0)
        model.afterStep.withLock { $0 = { step in if step == 1 { hold.wait() } } }
        let server = FlintServer(models: try ServedModels([("tiny", .decoder(model))]),
                                 options: ServeOptions(port: 0, limits: Harness.limits))
        try await server.application().test(.live) { client in
            let port = try #require(client.port)
            let body = #"{"model": "tiny", "prompt": [1, 2, 3], "max_tokens": 120, "ignore_eos": true, "temperature": 0}"#
            let fd = try Self.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n" + body, port: port)
            #expect(await eventually { model.slotsInUse == 1 }, "the completion is running")
            close(fd)
            #expect(await eventually { model.state.withLock { $0.cancelled.contains(0) } }, "the client's leaving cancelled its sequence")
            hold.signal()
            #expect(await eventually { model.slotsInUse == 0 }, "and freed its slot")
            #expect(model.stepStats.steps < 120, "it stopped after \(model.stepStats.steps) of its 120 steps")
            #expect(await eventually { server.requestsInFlight == 0 }, "the request is no longer in flight (drain would wait for it)")
            // A client that stays gets its whole completion over the same kind of connection.
            let r = try await client.post("/v1/completions", #"{"model": "tiny", "prompt": [5], "max_tokens": 3, "ignore_eos": true}"#)
            #expect(r.status == .ok)
            #expect(r.json["choices"]?.array?.first?["finish_reason"]?.string == "length", "\(r.text)")
        }
    }
}
