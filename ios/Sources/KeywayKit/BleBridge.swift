import Dispatch
import Foundation
import KeywayShared

/// One advertisement heard by the platform's radio: the Keyway service data and its RSSI.
public struct BleAdvert: Sendable, Equatable {
    /// The platform's id for the peripheral; the core hands it back to `connect`.
    public var peer: String
    /// The service data under the Keyway service UUID (the door's advertisement payload).
    public var payload: Data
    public var rssi: Int16

    public init(peer: String, payload: Data, rssi: Int16) {
        self.peer = peer
        self.payload = payload
        self.rssi = rssi
    }
}

/// What a connected door sends back: notifications on the response characteristic, and the
/// link going away. Called on the radio's queue.
public struct BleLinkEvents: Sendable {
    public let notified: @Sendable (Data) -> Void
    public let disconnected: @Sendable (String) -> Void
}

/// A connection to a door's Keyway GATT service, notifications already enabled.
public protocol BleLink: AnyObject, Sendable {
    /// The link's ATT MTU (largest write without response + 3 bytes of ATT header).
    var attMtu: Int { get }
    /// Writes the fragments, in order, to the control point (write without response), pacing
    /// them as the stack allows; `completion` once all are handed to the stack.
    func send(_ fragments: [Data], completion: @escaping @Sendable ((any Error)?) -> Void)
}

/// The platform's Bluetooth LE central, callback style (CoreBluetooth on iOS; a fake in tests).
/// Implementations never block; callbacks may arrive on any queue.
public protocol BleRadio: AnyObject, Sendable {
    /// Starts scanning; `onAdvert` for each advertisement carrying service data under
    /// `serviceUUID`. Throws when scanning cannot start (Bluetooth off, permission denied).
    func startScan(serviceUUID: String, onAdvert: @escaping @Sendable (BleAdvert) -> Void) throws
    func stopScan()
    /// Connects to `peer`, discovers the service and its two characteristics and enables
    /// notifications, then calls `completion` once.
    func connect(
        peer: String, layout: GattLayout, events: BleLinkEvents,
        completion: @escaping @Sendable (Result<any BleLink, any Error>) -> Void)
    /// Cancels a pending or established connection to `peer`.
    func cancel(peer: String)
}

/// The core's `BleShell` over a callback-style radio. The core calls these methods on its own
/// worker threads and expects them to block until done, so this is where callbacks become
/// blocking calls with timeouts. The GATT framing (fragments, reassembly) is the core's
/// (`gattFragment`, `GattReassembler`); this only moves bytes.
public final class BleBridge: BleShell, @unchecked Sendable {
    public struct Timeouts: Sendable {
        public var connect: TimeInterval = 10
        public var send: TimeInterval = 5
        /// Same as the core's own transports: a door answers within 5 s or not at all.
        public var reply: TimeInterval = 5

        public init(connect: TimeInterval = 10, send: TimeInterval = 5, reply: TimeInterval = 5) {
            self.connect = connect
            self.send = send
            self.reply = reply
        }
    }

    private let radio: any BleRadio
    private let timeouts: Timeouts
    private let layout = gattLayout()
    private let lock = NSLock()
    private weak var core: KeywayCore?
    private var links: [UInt64: Connection] = [:]
    private var nextId: UInt64 = 1

    public init(radio: any BleRadio, timeouts: Timeouts = Timeouts()) {
        self.radio = radio
        self.timeouts = timeouts
    }

    /// Where heard advertisements go. Weak: the core owns this bridge.
    public func attach(core: KeywayCore) {
        lock.withLock { self.core = core }
    }

    public func startScan() throws {
        do {
            try radio.startScan(serviceUUID: layout.serviceUuid) { [weak self] advert in
                self?.heard(advert)
            }
        } catch {
            throw Self.platform(error)
        }
    }

    public func stopScan() {
        radio.stopScan()
    }

    public func connect(peer: String) throws -> UInt64 {
        let connection = Connection(peer: peer)
        let outcome = OneShot<Result<any BleLink, any Error>>()
        radio.connect(
            peer: peer, layout: layout,
            events: BleLinkEvents(
                notified: { [weak connection] data in connection?.notified(data) },
                disconnected: { [weak connection] why in connection?.dropped(why) }),
            completion: { [radio] result in
                // Connected after the core gave up: let the door go.
                if !outcome.fulfil(result), case .success = result { radio.cancel(peer: peer) }
            })
        guard let result = outcome.wait(timeout: timeouts.connect) else {
            radio.cancel(peer: peer)
            throw KeywayError.Platform(message: "the door did not connect in time")
        }
        let link: any BleLink
        do { link = try result.get() } catch { throw Self.platform(error) }
        connection.link = link
        return lock.withLock {
            let id = nextId
            nextId += 1
            links[id] = connection
            return id
        }
    }

    public func exchange(connection: UInt64, message: Data) throws -> Data {
        guard let c = lock.withLock({ links[connection] }), let link = c.link else {
            throw KeywayError.Platform(message: "not connected")
        }
        // Rust splits the message for this link's MTU and joins the reply.
        let fragments = try gattFragment(message: message, attMtu: UInt32(clamping: link.attMtu))
        let reply = c.expectReply()
        let sent = OneShot<(any Error)?>()
        link.send(fragments) { sent.fulfil($0) }
        guard let sendError = sent.wait(timeout: timeouts.send) else {
            throw KeywayError.Platform(message: "the door did not accept the message in time")
        }
        if let sendError { throw Self.platform(sendError) }
        guard let answer = reply.wait(timeout: timeouts.reply) else {
            throw KeywayError.Platform(message: "the door did not answer in time")
        }
        do { return try answer.get() } catch { throw Self.platform(error) }
    }

    public func disconnect(connection: UInt64) {
        guard let c = lock.withLock({ links.removeValue(forKey: connection) }) else { return }
        c.dropped("disconnected")
        radio.cancel(peer: c.peer)
    }

    private func heard(_ advert: BleAdvert) {
        // Strong only for this call, on the radio's queue (never on one of the core's threads).
        guard let core = lock.withLock({ self.core }) else { return }
        core.bleAdvert(peer: advert.peer, payload: advert.payload, rssi: advert.rssi)
    }

    private static func platform(_ error: any Error) -> KeywayError {
        if let e = error as? KeywayError { return e }
        return .Platform(message: (error as? LocalizedError)?.errorDescription ?? String(describing: error))
    }
}

/// One door link: notifications are fed to the reply awaited by the current exchange.
private final class Connection: @unchecked Sendable {
    let peer: String
    private let lock = NSLock()
    private var _link: (any BleLink)?
    private var reply: OneShot<Result<Data, any Error>>?
    private var reassembler: GattReassembler?

    init(peer: String) { self.peer = peer }

    var link: (any BleLink)? {
        get { lock.withLock { _link } }
        set { lock.withLock { _link = newValue } }
    }

    /// Starts an exchange: a fresh reassembler, and the reply slot it fills.
    func expectReply() -> OneShot<Result<Data, any Error>> {
        let slot = OneShot<Result<Data, any Error>>()
        lock.withLock {
            reply = slot
            reassembler = GattReassembler()
        }
        return slot
    }

    func notified(_ fragment: Data) {
        lock.withLock {
            // A notification outside an exchange has nobody waiting for it.
            guard let slot = reply, let r = reassembler else { return }
            do {
                guard let message = try r.push(fragment: fragment) else { return }
                slot.fulfil(.success(message))
            } catch {
                slot.fulfil(.failure(error))
            }
            reply = nil
            reassembler = nil
        }
    }

    func dropped(_ why: String) {
        lock.withLock {
            _link = nil
            reply?.fulfil(.failure(KeywayError.Platform(message: "door disconnected: \(why)")))
            reply = nil
            reassembler = nil
        }
    }
}

/// A value delivered once from a callback to a thread blocked waiting for it.
final class OneShot<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private let ready = DispatchSemaphore(value: 0)
    private var value: T?
    private var closed = false

    /// Delivers `v`; false when a value was already delivered or the waiter gave up.
    @discardableResult
    func fulfil(_ v: T) -> Bool {
        let accepted = lock.withLock {
            guard !closed else { return false }
            closed = true
            value = v
            return true
        }
        if accepted { ready.signal() }
        return accepted
    }

    /// The value, or nil after `timeout` seconds (later deliveries are then refused).
    func wait(timeout: TimeInterval) -> T? {
        if ready.wait(timeout: .now() + timeout) == .success {
            return lock.withLock { value }
        }
        return lock.withLock {
            if closed { return value }  // delivered just as the wait timed out
            closed = true
            return nil
        }
    }
}
