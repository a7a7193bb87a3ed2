import Foundation
import KeywayShared
import XCTest

@testable import KeywayKit

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Waits for the store's view (republished by the core's render observer, never re-read
/// here) to satisfy `predicate`.
@MainActor
@discardableResult
func waitUntil(
    _ store: KeywayStore, _ what: String, timeout: TimeInterval = 15,
    file: StaticString = #filePath, line: UInt = #line,
    _ predicate: (ViewModel) -> Bool
) async throws -> ViewModel {
    let deadline = Date().addingTimeInterval(timeout)
    while !predicate(store.view) {
        if Date() > deadline {
            XCTFail("timed out waiting for \(what); view: \(store.view)", file: file, line: line)
            throw TimedOut(what: what)
        }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    return store.view
}

/// Polls a condition that is not part of the view (what a fake saw).
@MainActor
func eventually(_ what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline { throw TimedOut(what: what) }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
}

/// Runs a test body on the main actor, where the store lives. Test methods themselves stay
/// nonisolated: XCTest's test discovery on Linux cannot call main-actor test methods.
func onMain(_ body: @MainActor @Sendable () async throws -> Void) async throws {
    try await body()
}

/// A fresh data directory for one core.
func tempDir() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("keyway-swift-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A platform key with a fixed, valid P-256 public key (the curve's generator, private key 1:
/// a test value only) that refuses to sign, as a phone without secure hardware would.
final class TestKeyStore: DeviceKeyStore, @unchecked Sendable {
    static let generator = Data(hex:
        "04" + "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
            + "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
    struct NoHardware: Error {}

    private let lock = NSLock()
    private var _publicKeyCalls = 0
    private var _signCalls = 0
    var publicKeyCalls: Int { lock.withLock { _publicKeyCalls } }
    var signCalls: Int { lock.withLock { _signCalls } }

    func publicKey() throws -> Data {
        lock.withLock { _publicKeyCalls += 1 }
        return Self.generator
    }

    func sign(_ message: Data) throws -> Data {
        lock.withLock { _signCalls += 1 }
        throw NoHardware()
    }
}

/// A radio with one scripted door. The door joins the written fragments with the core's
/// reassembler, records each message, and answers as `behaviour` says.
final class FakeRadio: BleRadio, @unchecked Sendable {
    enum Door {
        /// Replies with the message reversed, fragmented for `mtu`.
        case reverse
        /// Drops the link after the first message (a door that is not really there).
        case hangUp
        /// Never answers.
        case silent
        /// Connection attempts fail.
        case unreachable
    }

    let queue = DispatchQueue(label: "fake-radio")
    private let lock = NSLock()
    private var _door: Door
    private var onAdvert: (@Sendable (BleAdvert) -> Void)?
    private var _events: [String] = []
    private var _messages: [Data] = []
    let mtu: Int

    init(door: Door = .reverse, mtu: Int = 23) {
        _door = door
        self.mtu = mtu
    }

    var door: Door {
        get { lock.withLock { _door } }
        set { lock.withLock { _door = newValue } }
    }
    /// What the core asked of the radio, in order: "scan", "stop", "connect PEER", "cancel PEER".
    var events: [String] { lock.withLock { _events } }
    /// Whole messages the door received.
    var messages: [Data] { lock.withLock { _messages } }
    var scanning: Bool { lock.withLock { onAdvert != nil } }

    private func note(_ e: String) { lock.withLock { _events.append(e) } }

    func startScan(serviceUUID: String, onAdvert: @escaping @Sendable (BleAdvert) -> Void) throws {
        XCTAssertEqual(serviceUUID, gattLayout().serviceUuid)
        note("scan")
        lock.withLock { self.onAdvert = onAdvert }
    }

    func stopScan() {
        note("stop")
        lock.withLock { onAdvert = nil }
    }

    /// Delivers an advertisement as the platform would, on the radio's queue.
    func hear(_ advert: BleAdvert) {
        queue.async { [self] in
            let deliver = lock.withLock { onAdvert }
            deliver?(advert)
        }
    }

    func connect(
        peer: String, layout: GattLayout, events: BleLinkEvents,
        completion: @escaping @Sendable (Result<any BleLink, any Error>) -> Void
    ) {
        note("connect \(peer)")
        let door = self.door
        queue.async { [self] in
            switch door {
            case .unreachable:
                completion(.failure(KeywayError.Platform(message: "peripheral not found")))
            default:
                completion(.success(FakeLink(radio: self, door: door, events: events)))
            }
        }
    }

    func cancel(peer: String) { note("cancel \(peer)") }

    fileprivate func received(_ message: Data) { lock.withLock { _messages.append(message) } }
}

private final class FakeLink: BleLink, @unchecked Sendable {
    let radio: FakeRadio
    let door: FakeRadio.Door
    let events: BleLinkEvents
    let inbox = GattReassembler()
    var attMtu: Int { radio.mtu }

    init(radio: FakeRadio, door: FakeRadio.Door, events: BleLinkEvents) {
        self.radio = radio
        self.door = door
        self.events = events
    }

    func send(_ fragments: [Data], completion: @escaping @Sendable ((any Error)?) -> Void) {
        radio.queue.async { [self] in
            var message: Data?
            for f in fragments {
                XCTAssertLessThanOrEqual(f.count, attMtu - 3, "fragment larger than the ATT payload")
                do { message = try inbox.push(fragment: f) } catch { return completion(error) }
            }
            completion(nil)
            guard let message else { return }
            radio.received(message)
            switch door {
            case .reverse:
                let reply = Data(message.reversed())
                for f in (try? gattFragment(message: reply, attMtu: UInt32(attMtu))) ?? [] {
                    events.notified(f)
                }
            case .hangUp: events.disconnected("the door went away")
            case .silent, .unreachable: break
            }
        }
    }
}

/// A Keyway advertisement payload: version 1, short id, tx power −59 dBm at 1 m, proximity
/// code, flags (walk-up allowed).
func advertPayload(shortId: String, proximityCode: UInt32 = 0, walkUp: Bool = true) -> Data {
    var d = Data([1])
    d.append(Data(hex: shortId))
    d.append(0xC5)
    d.append(contentsOf: [UInt8(proximityCode >> 16 & 0xFF), UInt8(proximityCode >> 8 & 0xFF), UInt8(proximityCode & 0xFF)])
    d.append(walkUp ? 1 : 0)
    return d
}

extension Data {
    init(hex: String) {
        var bytes: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() {
            bytes.append(UInt8(String([a, b]), radix: 16)!)
        }
        self.init(bytes)
    }
}
