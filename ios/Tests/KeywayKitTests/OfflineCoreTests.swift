import Foundation
import KeywayShared
import XCTest

@testable import KeywayKit

/// The real Rust core through the generated bindings, with no server: port 9 on loopback
/// refuses connections.
let offline = "http://127.0.0.1:9"

final class OfflineCoreTests: XCTestCase {
    func testFreeFunctions() throws {
        XCTAssertFalse(coreVersion().isEmpty)
        let info = try decodeAdvert(payload: Data([1, 0xA1, 0xB2, 0xC3, 0xD4, 0xC5, 0xAB, 0xCD, 0xEF, 1]))
        XCTAssertEqual(info, AdvertInfo(shortId: "a1b2c3d4", txPower: -59, proximityCode: 0xABCDEF, walkUp: true))
        XCTAssertEqual(try decodeAdvert(payload: advertPayload(shortId: "01020304", walkUp: false)).walkUp, false)
        XCTAssertThrowsError(try decodeAdvert(payload: Data([1, 2]))) { error in
            guard case KeywayError.InvalidEvent = error else { return XCTFail("\(error)") }
        }
    }

    /// Every event the shell can send is one the core accepts: the Swift encoding matches
    /// the Rust enum. Garbage is refused with `InvalidEvent`, not a crash.
    func testEveryShellEventIsAcceptedByTheCore() throws {
        let core = try KeywayCore(config: CoreConfig(apiBase: offline, dataDir: tempDir().path), observer: NoObserver())
        let events: [CoreEvent] = [
            .start(apiBase: offline), .login(email: "ada@example.com", password: "p\"w\\ ü"), .logout,
            .selectOrg(id: "org"), .refresh, .unlock(lock: "lock"), .dismissUnlock,
            .setWalkUp(lock: "lock", enabled: true), .redeemInvite(code: "https://x.test/invite#ABC"),
            .startScan, .stopScan, .setLocation(latitude: 52.52, longitude: 13.405, fixMs: 1_700_000_000_000),
            .setMotion(.still), .setMotion(.walking), .setMotion(.unknown),
            .setCarry(.covered), .setCarry(.uncovered), .setCarry(.unknown),
        ]
        for event in events {
            XCTAssertNoThrow(try core.sendEvent(eventJson: event.json), event.json)
        }
        XCTAssertEqual(CoreEvent.logout.json, #""logout""#)
        XCTAssertEqual(CoreEvent.setMotion(.still).json, #"{"set_motion":"still"}"#)
        XCTAssertEqual(CoreEvent.setCarry(.covered).json, #"{"set_carry":"covered"}"#)
        XCTAssertEqual(CoreEvent.setWalkUp(lock: "L", enabled: false).json, #"{"set_walk_up":{"enabled":false,"lock":"L"}}"#)
        for bad in ["{not json", #"{"no_such_event":{}}"#, #"{"unlock":{}}"#] {
            XCTAssertThrowsError(try core.sendEvent(eventJson: bad), bad) { error in
                guard case KeywayError.InvalidEvent = error else { return XCTFail("\(error)") }
            }
        }
    }

    func testStoreShowsSignedOutThenTheLoginErrorFromTheCore() async throws {
        try await onMain {
            let store = try KeywayStore(config: CoreConfig(apiBase: offline, dataDir: tempDir().path))
            let ready = try await waitUntil(store, "ready") { $0.ready }
            XCTAssertFalse(ready.signedIn)
            XCTAssertNil(ready.unlock)
            XCTAssertEqual(ready.places, [])

            store.login(email: "ada@example.com", password: "pw")
            XCTAssertNil(store.shellError)
            let failed = try await waitUntil(store, "login error") { $0.authError != nil }
            XCTAssertEqual(failed.authError, "no network connection")
            XCTAssertFalse(failed.signedIn)
            XCTAssertFalse(failed.authBusy)
            XCTAssertGreaterThan(store.refreshes, 1, "the render observer republished the view")
            // The typed view and the JSON view are the same state.
            let json = try JSONSerialization.jsonObject(with: Data(store.core.viewJson().utf8)) as? [String: Any]
            XCTAssertEqual(json?["auth_error"] as? String, "no network connection")
        }
    }

    /// Without a Bluetooth shell the core says so in the view.
    func testScanWithoutRadioGivesANotice() async throws {
        try await onMain {
            let store = try KeywayStore(config: CoreConfig(apiBase: offline, dataDir: tempDir().path))
            try await waitUntil(store, "ready") { $0.ready }
            store.setScanning(true)
            let view = try await waitUntil(store, "notice") { $0.notice != nil }
            XCTAssertTrue(view.notice?.contains("Bluetooth") ?? false, view.notice ?? "")
            XCTAssertFalse(view.scanning)
        }
    }

    /// The store runs the motion source while scanning; the core turns its samples into the
    /// wearer's motion and walking pace and forgets both when scanning stops.
    func testAccelerometerSamplesBecomeTheWearersMotion() async throws {
        try await onMain {
            let motion = ScriptedMotion()
            let store = try KeywayStore(config: CoreConfig(apiBase: offline, dataDir: tempDir().path), motion: motion)
            try await waitUntil(store, "ready") { $0.ready }
            XCTAssertEqual(store.view.motion, .unknown)
            XCTAssertNil(store.view.pace)
            store.setScanning(true)
            let sample = try XCTUnwrap(motion.sample, "scanning started the motion source")
            // Four seconds of strides at about 50 Hz: |a| swings ±3 m/s² around gravity at 1.9
            // steps a second, in real time (the core stamps samples with its own clock).
            let start = Date()
            while Date().timeIntervalSince(start) < 4 {
                let secs = Date().timeIntervalSince(start)
                sample(0.3, 0, 9.81 + 3 * sin(2 * Double.pi * 1.9 * secs))
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            try await waitUntil(store, "walking") { $0.motion == .walking }
            // The steps set the pace: 1.9 steps/s at 0.5·1.9 − 0.3 = 0.65 m a step.
            try await waitUntil(store, "a pace") { $0.pace != nil }
            let pace = try XCTUnwrap(store.view.pace)
            XCTAssertEqual(pace, 1.235, accuracy: 0.12)
            for i in 0..<50 {  // standing: the phone barely moves
                sample(0.3, 0.02 * sin(Double(i)), 9.81)
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            try await waitUntil(store, "still") { $0.motion == .still }
            XCTAssertEqual(store.view.pace, pace)  // standing keeps the walk-up pace
            store.setScanning(false)
            XCTAssertTrue(motion.stopped)
            try await waitUntil(store, "unknown") { $0.motion == .unknown && $0.pace == nil }
        }
    }

    func testTheProximitySensorBecomesHowThePhoneIsCarried() async throws {
        try await onMain {
            let proximity = ScriptedProximity()
            let store = try KeywayStore(config: CoreConfig(apiBase: offline, dataDir: tempDir().path), proximity: proximity)
            try await waitUntil(store, "ready") { $0.ready }
            XCTAssertEqual(store.view.carry, .unknown)
            store.setScanning(true)
            let covered = try XCTUnwrap(proximity.covered, "scanning started the proximity source")
            covered(true)
            try await waitUntil(store, "covered") { $0.carry == .covered }
            covered(false)
            try await waitUntil(store, "uncovered") { $0.carry == .uncovered }
            covered(nil)  // backgrounded: no reading
            try await waitUntil(store, "no reading") { $0.carry == .unknown }
            covered(true)
            try await waitUntil(store, "covered again") { $0.carry == .covered }
            store.setScanning(false)
            XCTAssertTrue(proximity.stopped)
            try await waitUntil(store, "unknown") { $0.carry == .unknown }
        }
    }

    /// An event the core refuses (here a NaN position) surfaces as `shellError`, not a crash.
    func testRejectedEventIsAShellError() async throws {
        try await onMain {
            let store = try KeywayStore(config: CoreConfig(apiBase: offline, dataDir: tempDir().path))
            store.setLocation(latitude: .nan, longitude: 13.4)
            XCTAssertNotNil(store.shellError)
            store.setLocation(latitude: 52.52, longitude: 13.405)
            XCTAssertNil(store.shellError)
        }
    }

    func testDisplayHelpers() {
        XCTAssertEqual(UnlockPhase("in_progress"), .inProgress)
        XCTAssertEqual(UnlockPhase("new_state"), .other("new_state"))
        let granted = UnlockView(lock: "l", lockName: "Front door", walkUp: false, state: "granted", route: .cloud, reason: nil, message: "door opened")
        XCTAssertTrue(granted.isFinished)
        XCTAssertEqual(granted.routeLabel, "cloud")
        var lock = LockView(id: "l", name: "Front door", online: true, lockdown: false, walkUpAllowed: true, walkUpEnabled: false, nearby: true, rssi: -61)
        XCTAssertEqual(lock.statusLine, "nearby, -61 dBm")
        lock.online = false
        lock.nearby = false
        XCTAssertEqual(lock.statusLine, "controller offline")
        XCTAssertEqual(KeywayError.Platform(message: "Bluetooth is off").message, "Bluetooth is off")
    }
}

/// A motion source the test drives by hand.
final class ScriptedMotion: MotionSource, @unchecked Sendable {
    private(set) var sample: (@Sendable (Double, Double, Double) -> Void)?
    private(set) var stopped = false

    func start(_ sample: @escaping @Sendable (Double, Double, Double) -> Void) { self.sample = sample }
    func stop() { stopped = true }
}

final class ScriptedProximity: ProximitySource, @unchecked Sendable {
    private(set) var covered: (@Sendable (Bool?) -> Void)?
    private(set) var stopped = false

    func start(_ covered: @escaping @Sendable (Bool?) -> Void) { self.covered = covered }
    func stop() { stopped = true }
}

final class NoObserver: CoreObserver, @unchecked Sendable {
    func onRender() {}
}
