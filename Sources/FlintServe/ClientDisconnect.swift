import Hummingbird
import NIOCore
import Synchronization

/// The request context of every route: Hummingbird's basic one plus the connection's channel, so a
/// handler can learn that its client went away (`clientDisconnect`).
public struct ServeContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The connection's disconnect watcher; nil where the server was built without one (the
    /// in-process router tests, which have no socket).
    func clientDisconnect() async -> ClientDisconnect? {
        try? await channel.pipeline.handler(type: ClientDisconnect.self).get()
    }
}

/// Watches one connection for its client going away: the end of its input (the client closed
/// the socket; HTTP/1.1 clients do not half-close while they wait for a response) or the channel
/// closing. A non-streamed response has nothing to write until it is done, so without this a
/// disconnected client's completion would run to `max_tokens` holding its KV slot.
final class ClientDisconnect: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    /// Reads pass through untouched (the default `channelRead` forwards them).
    typealias InboundIn = Any

    private struct State {
        var gone = false
        var next = 0
        var actions: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { disconnected() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        disconnected()
        context.fireChannelInactive()
    }

    private func disconnected() {
        let actions = state.withLock { s -> [@Sendable () -> Void] in
            s.gone = true
            defer { s.actions = [:] }
            return Array(s.actions.values)
        }
        for action in actions { action() }
    }

    /// Runs `action` once when the client goes away (at once if it already has). Returns a key for
    /// `remove`, or nil when it ran at once.
    func onDisconnect(_ action: @escaping @Sendable () -> Void) -> Int? {
        let key = state.withLock { s -> Int? in
            guard !s.gone else { return nil }
            s.next += 1
            s.actions[s.next] = action
            return s.next
        }
        if key == nil { action() }
        return key
    }

    func remove(_ key: Int?) {
        guard let key else { return }
        _ = state.withLock { $0.actions.removeValue(forKey: key) }
    }
}
