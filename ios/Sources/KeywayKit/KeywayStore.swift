import Foundation
import KeywayShared
import Observation

/// The one object screens talk to: holds the core, republishes its view model on the main actor
/// whenever the core renders, and turns user intents into core events. It decides nothing;
/// every rule (routes, fallbacks, walk-up, sessions) lives in the Rust core.
///
/// SwiftUI observes it through Observation (`@Observable`), so a screen re-renders when the
/// parts of `view` it read change.
@MainActor
@Observable
public final class KeywayStore {
    /// The core's latest view model.
    public private(set) var view: ViewModel
    /// A call into the core failed (an event the core rejected, or the core was gone). Not a
    /// product error: those are in `view` (`authError`, `notice`, `unlock`, ...).
    public private(set) var shellError: String?
    /// How many times the view was re-read after a render (diagnostics and tests).
    public private(set) var refreshes = 0

    @ObservationIgnored public let core: KeywayCore
    @ObservationIgnored private let relay: RenderRelay
    @ObservationIgnored private let motion: (any MotionSource)?
    @ObservationIgnored private let proximity: (any ProximitySource)?

    /// Builds the core. `ble` and `key` are the platform's Bluetooth stack and device key
    /// (CoreBluetooth and the Secure Enclave on iOS); without them the core has no Bluetooth
    /// (cloud unlocks only) and keeps a software key in `config.dataDir`. `motion` feeds the
    /// accelerometer while scanning, so walk-up knows whether the wearer walks or stands, and
    /// `proximity` the proximity sensor, so it knows whether the phone is in a pocket or bag.
    public init(
        config: CoreConfig, ble: BleBridge? = nil, key: (any KeyShell)? = nil, motion: (any MotionSource)? = nil,
        proximity: (any ProximitySource)? = nil
    ) throws {
        let relay = RenderRelay()
        let core = try KeywayCore.withPlatform(config: config, observer: relay, ble: ble, key: key)
        self.core = core
        self.relay = relay
        self.motion = motion
        self.proximity = proximity
        self.view = try core.view()
        ble?.attach(core: core)
        relay.target = { [weak self] in
            Task { @MainActor in self?.refresh() }
        }
        // The core rendered before `target` was set; read once more so nothing is missed.
        refresh()
    }

    public func send(_ event: CoreEvent) {
        do {
            try core.sendEvent(eventJson: event.json)
            shellError = nil
        } catch let e as KeywayError {
            shellError = e.message
        } catch {
            shellError = String(describing: error)
        }
    }

    /// Re-reads the view model (the render observer does this; screens need not).
    public func refresh() {
        relay.taken()
        do {
            let next = try core.view()
            refreshes += 1
            if next != view { view = next }
        } catch let e as KeywayError {
            shellError = e.message
        } catch {
            shellError = String(describing: error)
        }
    }

    // Intents, one per user action, so screens read like the product.
    public func login(email: String, password: String) { send(.login(email: email, password: password)) }
    public func logout() { send(.logout) }
    public func selectOrg(_ id: String) { send(.selectOrg(id: id)) }
    public func reload() { send(.refresh) }
    public func unlock(_ lock: LockView) { send(.unlock(lock: lock.id)) }
    public func dismissUnlock() { send(.dismissUnlock) }
    public func setWalkUp(_ lock: LockView, enabled: Bool) { send(.setWalkUp(lock: lock.id, enabled: enabled)) }
    public func redeemInvite(_ code: String) { send(.redeemInvite(code: code)) }
    public func setScanning(_ on: Bool) {
        send(on ? .startScan : .stopScan)
        if let motion {
            if on {
                motion.start { [core] x, y, z in core.accelerometer(x: x, y: y, z: z) }
            } else {
                motion.stop()
                core.accelerometerStopped()
            }
        }
        if let proximity {
            if on {
                proximity.start { [core] covered in
                    if let covered { core.proximity(covered: covered) } else { core.proximityStopped() }
                }
            } else {
                proximity.stop()
                core.proximityStopped()
            }
        }
    }
    public func setLocation(latitude: Double, longitude: Double, at date: Date = Date()) {
        send(.setLocation(latitude: latitude, longitude: longitude, fixMs: UInt64(date.timeIntervalSince1970 * 1000)))
    }
}

/// Where accelerometer samples come from (CoreMotion on a phone). `start` delivers samples in
/// m/s², gravity included, about 50 a second, on any thread, until `stop`; the core does the
/// classifying.
public protocol MotionSource: AnyObject {
    func start(_ sample: @escaping @Sendable (Double, Double, Double) -> Void)
    func stop()
}

/// Where proximity-sensor changes come from (UIKit on a phone). `start` reports covered (a
/// pocket or bag) or uncovered (in the hand), now and on every change, or `nil` while it
/// cannot tell (an iPhone app in the background), on any thread, until `stop`.
public protocol ProximitySource: AnyObject {
    func start(_ covered: @escaping @Sendable (Bool?) -> Void)
    func stop()
}

/// The core's render observer. Called on the core's threads; coalesces a burst of renders
/// into one main-actor refresh.
final class RenderRelay: CoreObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var pending = false
    private var _target: (@Sendable () -> Void)?

    var target: (@Sendable () -> Void)? {
        get { lock.withLock { _target } }
        set { lock.withLock { _target = newValue } }
    }

    func onRender() {
        let fire: (@Sendable () -> Void)? = lock.withLock {
            guard !pending, let t = _target else { return nil }
            pending = true
            return t
        }
        fire?()
    }

    /// The refresh is about to read the view: renders from now on schedule another.
    func taken() { lock.withLock { pending = false } }
}
