import Foundation
import KeywayShared
import XCTest

@testable import KeywayKit

/// Journeys through the store against a real `keyway-server --demo` and a `keyway-controller`
/// (no radio: cloud only), started by scripts/check-ios, which passes:
///   KEYWAY_DEMO_API        server base URL
///   KEYWAY_DEMO_EMAIL / KEYWAY_DEMO_PASSWORD   a member with access to both doors
///   KEYWAY_DEMO_INVITE     the seeded visitor invite code (Front door only)
///   KEYWAY_DEMO_FRONT_SHORT_ID   the Front door's advertised short id (hex)
/// The phone's BLE is the scripted radio: its "door" drops the link after HELLO, so a BLE
/// attempt falls back to the cloud, and its device key is the test key.
final class DemoServerJourneyTests: XCTestCase {
    struct Demo {
        let api, email, password, invite, frontShortId: String
    }

    static func demo() throws -> Demo {
        let env = ProcessInfo.processInfo.environment
        guard let api = env["KEYWAY_DEMO_API"], let email = env["KEYWAY_DEMO_EMAIL"],
            let password = env["KEYWAY_DEMO_PASSWORD"], let invite = env["KEYWAY_DEMO_INVITE"],
            let short = env["KEYWAY_DEMO_FRONT_SHORT_ID"]
        else { throw XCTSkip("KEYWAY_DEMO_* not set: run through scripts/check-ios") }
        return Demo(api: api, email: email, password: password, invite: invite, frontShortId: short)
    }

    func testStaffSignsInSeesDoorsAndOpensThem() async throws {
        let demo = try Self.demo()
        try await onMain {
            let radio = FakeRadio(door: .hangUp)
            let key = TestKeyStore()
            let store = try KeywayStore(
                config: CoreConfig(apiBase: demo.api, dataDir: tempDir().path),
                ble: BleBridge(radio: radio), key: DeviceKeyShell(key))
            try await waitUntil(store, "ready") { $0.ready }

            // Sign in: places and doors, and a credential bound to the Swift device key.
            store.login(email: demo.email, password: demo.password)
            var view = try await waitUntil(store, "places and a credential") {
                $0.signedIn && $0.lock(named: "Front door") != nil && $0.credential != nil
            }
            XCTAssertEqual(view.userEmail, demo.email)
            XCTAssertEqual(view.selectedOrg?.name, "Acme")
            XCTAssertEqual(view.places.map(\.name), ["HQ"])
            XCTAssertEqual(Set(view.places[0].locks.map(\.name)), ["Front door", "Lab"])
            XCTAssertGreaterThan(key.publicKeyCalls, 0, "the core registered the Swift device key")
            let front = try XCTUnwrap(view.lock(named: "Front door"))
            let lab = try XCTUnwrap(view.lock(named: "Lab"))
            XCTAssertTrue(front.walkUpAllowed)
            XCTAssertFalse(lab.walkUpAllowed)
            if !front.online {
                // The controller may have connected after the first listing.
                store.reload()
                view = try await waitUntil(store, "Front door online") { $0.lock(id: front.id)?.online == true }
            }

            // Walk-up is a per-door setting the core keeps.
            store.setWalkUp(front, enabled: true)
            try await waitUntil(store, "walk-up on") { $0.lock(id: front.id)?.walkUpEnabled == true }
            store.setWalkUp(front, enabled: false)
            try await waitUntil(store, "walk-up off") { $0.lock(id: front.id)?.walkUpEnabled == false }

            // The radio hears the Front door: the core shows it nearby with the RSSI.
            store.setScanning(true)
            try await eventually("radio scanning") { radio.scanning }
            let advert = BleAdvert(peer: "front-peer", payload: advertPayload(shortId: demo.frontShortId), rssi: -60)
            radio.hear(advert)
            view = try await waitUntil(store, "Front door nearby") { $0.lock(id: front.id)?.nearby == true }
            XCTAssertEqual(view.lock(id: front.id)?.rssi, -60)
            XCTAssertEqual(view.lock(id: lab.id)?.nearby, false)

            // Tap: the door is near and the credential valid, so the core tries BLE through the
            // Swift bridge (HELLO reaches the door, which hangs up) and then falls back to the cloud.
            radio.hear(advert)
            store.unlock(try XCTUnwrap(view.lock(id: front.id)))
            view = try await waitUntil(store, "Front door unlock result") { $0.unlock?.isFinished == true }
            let unlock = try XCTUnwrap(view.unlock)
            XCTAssertEqual(unlock.phase, .granted, unlock.message)
            XCTAssertEqual(unlock.route, .cloud)
            XCTAssertEqual(unlock.lockName, "Front door")
            XCTAssertTrue(radio.events.contains("connect front-peer"), "\(radio.events)")
            // The core closes the failed link on its own task, which may finish after the cloud
            // answer: wait for it rather than race it.
            try await eventually("BLE link closed") { radio.events.contains("cancel front-peer") }
            XCTAssertEqual(radio.messages.count, 1, "one HELLO reached the door")
            XCTAssertEqual(key.signCalls, 0, "nothing to sign before the door proved itself")
            store.dismissUnlock()
            try await waitUntil(store, "banner dismissed") { $0.unlock == nil }

            // The Lab was never heard: straight to the cloud.
            store.unlock(lab)
            view = try await waitUntil(store, "Lab unlock result") { $0.unlock?.isFinished == true }
            XCTAssertEqual(view.unlock?.phase, .granted, view.unlock?.message ?? "")
            XCTAssertEqual(view.unlock?.route, .cloud)
            XCTAssertEqual(radio.events.filter { $0.hasPrefix("connect") }.count, 1)

            // Walk-up, opted in for the Front door: the phone walks up to it (RSSI rising in
            // real time, as the radio reports it), the core's engine decides, and tries BLE
            // (walk-up never falls back to the cloud), through the Swift bridge again.
            store.dismissUnlock()
            store.setWalkUp(front, enabled: true)
            try await waitUntil(store, "walk-up on") { $0.lock(id: front.id)?.walkUpEnabled == true }
            func heard(at metres: Double) -> BleAdvert {
                let rssi = -59 - 20 * log10(metres)  // tx power −59 dBm at 1 m, free space
                return BleAdvert(peer: "front-peer", payload: advert.payload, rssi: Int16(rssi.rounded()))
            }
            var metres = 6.0
            while metres > 0.3 {  // 1.2 m/s, an advertisement every 50 ms
                radio.hear(heard(at: metres))
                metres -= 0.06
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            for _ in 0..<60 where store.view.lastWalkUp == nil {  // wait at the door
                radio.hear(heard(at: 0.3))
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            view = try await waitUntil(store, "walk-up attempt") { $0.unlock?.walkUp == true && $0.unlock?.isFinished == true }
            XCTAssertEqual(view.lastWalkUp?.lock, front.id)
            XCTAssertNil(view.lastWalkUp?.skipped)
            XCTAssertLessThanOrEqual(view.lastWalkUp?.distanceM ?? 99, 1.6)
            XCTAssertEqual(view.unlock?.route, .ble)
            XCTAssertNotEqual(view.unlock?.phase, .granted, "the scripted door hangs up")
            XCTAssertEqual(radio.events.filter { $0.hasPrefix("connect") }.count, 2)
            print("walk-up at \(view.lastWalkUp?.distanceM ?? 0) m: \(view.unlock?.state ?? "") (\(view.unlock?.message ?? ""))")
            store.setWalkUp(front, enabled: false)

            store.setScanning(false)
            try await waitUntil(store, "scan stopped") { !$0.scanning }
            store.logout()
            view = try await waitUntil(store, "signed out") { !$0.signedIn }
            XCTAssertEqual(view.places, [])
            XCTAssertNil(store.shellError)
        }
    }

    func testWrongPasswordIsShown() async throws {
        let demo = try Self.demo()
        try await onMain {
            let store = try KeywayStore(config: CoreConfig(apiBase: demo.api, dataDir: tempDir().path))
            try await waitUntil(store, "ready") { $0.ready }
            store.login(email: demo.email, password: "not-the-password")
            let view = try await waitUntil(store, "login error") { $0.authError != nil }
            XCTAssertFalse(view.signedIn)
            XCTAssertNotEqual(view.authError, "no network connection")
        }
    }

    func testVisitorRedeemsAnInviteWithoutAPassword() async throws {
        let demo = try Self.demo()
        try await onMain {
            let store = try KeywayStore(config: CoreConfig(apiBase: demo.api, dataDir: tempDir().path))
            try await waitUntil(store, "ready") { $0.ready }
            store.redeemInvite("\(demo.api)/invite#\(demo.invite)")
            let view = try await waitUntil(store, "guest session") { $0.signedIn }
            XCTAssertTrue(view.guest)
            XCTAssertTrue(view.invite.accepted)
            XCTAssertNil(view.invite.error)
            try await waitUntil(store, "the invited door") { $0.lock(named: "Front door") != nil }
            XCTAssertNil(store.view.lock(named: "Lab"), "the invite covers the Front door only")
        }
    }

    /// `start` points a running core at another server.
    func testStartSwitchesTheServer() async throws {
        let demo = try Self.demo()
        try await onMain {
            let store = try KeywayStore(config: CoreConfig(apiBase: "http://127.0.0.1:9", dataDir: tempDir().path))
            try await waitUntil(store, "ready") { $0.ready }
            store.send(.start(apiBase: demo.api))
            store.login(email: demo.email, password: demo.password)
            let view = try await waitUntil(store, "signed in") { $0.signedIn || $0.authError != nil }
            XCTAssertNil(view.authError)
        }
    }
}
