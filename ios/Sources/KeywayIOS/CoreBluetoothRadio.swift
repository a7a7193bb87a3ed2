import CoreBluetooth
import Foundation
import KeywayKit
import KeywayShared

/// The phone's Bluetooth LE central for the core: scans for door advertisements (service data
/// under the Keyway service UUID, with RSSI) and opens GATT links to doors. Callback style;
/// `BleBridge` turns it into the core's blocking `BleShell`. Every CoreBluetooth object is
/// touched only on `queue`.
public final class CoreBluetoothRadio: NSObject, BleRadio, CBCentralManagerDelegate, @unchecked Sendable {
    enum RadioError: LocalizedError {
        case off, unauthorized, unsupported, unknownPeer, notADoor, notConnected
        case failed(String)

        var errorDescription: String? {
            switch self {
            case .off: return "Bluetooth is off"
            case .unauthorized: return "Keyway may not use Bluetooth (Settings › Keyway › Bluetooth)"
            case .unsupported: return "this device has no Bluetooth LE"
            case .unknownPeer: return "the door is no longer in range; scan again"
            case .notADoor: return "not a Keyway door (service or characteristics missing)"
            case .notConnected: return "not connected"
            case .failed(let why): return why
            }
        }
    }

    private let queue = DispatchQueue(label: "dev.keyway.ble")
    private var central: CBCentralManager!
    private var onAdvert: (@Sendable (BleAdvert) -> Void)?
    private var service: CBUUID?
    /// Scanning was asked for before Bluetooth was powered on.
    private var scanPending = false
    /// Peripherals must be retained between discovery and connection.
    private var heard: [UUID: CBPeripheral] = [:]
    private var links: [UUID: PeripheralLink] = [:]

    public override init() {
        super.init()
        central = CBCentralManager(
            delegate: self, queue: queue, options: [CBCentralManagerOptionShowPowerAlertKey: true])
    }

    // MARK: BleRadio (called on the core's threads)

    public func startScan(serviceUUID: String, onAdvert: @escaping @Sendable (BleAdvert) -> Void) throws {
        try queue.sync {
            self.service = CBUUID(string: serviceUUID)
            self.onAdvert = onAdvert
            switch central.state {
            case .poweredOn: scan()
            case .unknown, .resetting: scanPending = true  // starts in centralManagerDidUpdateState
            case .poweredOff: throw RadioError.off
            case .unauthorized: throw RadioError.unauthorized
            case .unsupported: throw RadioError.unsupported
            @unknown default: throw RadioError.unsupported
            }
        }
    }

    public func stopScan() {
        queue.async { [self] in
            onAdvert = nil
            scanPending = false
            if central.state == .poweredOn { central.stopScan() }
        }
    }

    public func connect(
        peer: String, layout: GattLayout, events: BleLinkEvents,
        completion: @escaping @Sendable (Result<any BleLink, any Error>) -> Void
    ) {
        queue.async { [self] in
            guard let id = UUID(uuidString: peer),
                let peripheral = heard[id] ?? central.retrievePeripherals(withIdentifiers: [id]).first
            else { return completion(.failure(RadioError.unknownPeer)) }
            let link = PeripheralLink(
                central: central, peripheral: peripheral, layout: layout, events: events, queue: queue,
                completion: completion)
            links[id] = link
            peripheral.delegate = link
            central.connect(peripheral, options: nil)
        }
    }

    public func cancel(peer: String) {
        queue.async { [self] in
            guard let id = UUID(uuidString: peer), let link = links.removeValue(forKey: id) else { return }
            link.closed(nil)
            central.cancelPeripheralConnection(link.peripheral)
        }
    }

    // MARK: CBCentralManagerDelegate (on `queue`)

    public func centralManagerDidUpdateState(_ central: CBCentralManager) {
        if central.state == .poweredOn, scanPending {
            scanPending = false
            scan()
        }
    }

    public func centralManager(
        _ central: CBCentralManager, didDiscover peripheral: CBPeripheral,
        advertisementData: [String: Any], rssi RSSI: NSNumber
    ) {
        // 127 means "RSSI not available": useless for proximity.
        guard let onAdvert, let service, RSSI.intValue != 127,
            let serviceData = advertisementData[CBAdvertisementDataServiceDataKey] as? [CBUUID: Data],
            let payload = serviceData[service]
        else { return }
        heard[peripheral.identifier] = peripheral
        onAdvert(BleAdvert(peer: peripheral.identifier.uuidString, payload: payload, rssi: Int16(clamping: RSSI.intValue)))
    }

    public func centralManager(_ central: CBCentralManager, didConnect peripheral: CBPeripheral) {
        links[peripheral.identifier]?.connected()
    }

    public func centralManager(_ central: CBCentralManager, didFailToConnect peripheral: CBPeripheral, error: (any Error)?) {
        links.removeValue(forKey: peripheral.identifier)?.closed(error ?? RadioError.failed("could not connect"))
    }

    public func centralManager(
        _ central: CBCentralManager, didDisconnectPeripheral peripheral: CBPeripheral, error: (any Error)?
    ) {
        links.removeValue(forKey: peripheral.identifier)?.closed(error)
    }

    private func scan() {
        // No service filter: doors put their payload in service data (the 31-byte legacy
        // advertisement has no room for the UUID list too), which iOS does not filter on.
        // Duplicates on: walk-up needs a stream of RSSI readings, not one per peripheral.
        central.scanForPeripherals(withServices: nil, options: [CBCentralManagerScanOptionAllowDuplicatesKey: true])
    }
}

/// One door connection: service discovery, notifications, paced writes. On the radio's queue.
final class PeripheralLink: NSObject, CBPeripheralDelegate, BleLink, @unchecked Sendable {
    let peripheral: CBPeripheral
    private let central: CBCentralManager
    private let service: CBUUID
    private let controlPoint: CBUUID
    private let response: CBUUID
    private let events: BleLinkEvents
    private let queue: DispatchQueue
    private var setup: (@Sendable (Result<any BleLink, any Error>) -> Void)?
    private var control: CBCharacteristic?
    private var outbox: [Data] = []
    private var sent: (@Sendable ((any Error)?) -> Void)?

    init(
        central: CBCentralManager, peripheral: CBPeripheral, layout: GattLayout, events: BleLinkEvents,
        queue: DispatchQueue, completion: @escaping @Sendable (Result<any BleLink, any Error>) -> Void
    ) {
        self.central = central
        self.peripheral = peripheral
        self.service = CBUUID(string: layout.serviceUuid)
        self.controlPoint = CBUUID(string: layout.controlPointUuid)
        self.response = CBUUID(string: layout.responseUuid)
        self.events = events
        self.queue = queue
        self.setup = completion
    }

    var attMtu: Int { queue.sync { peripheral.maximumWriteValueLength(for: .withoutResponse) + 3 } }

    func send(_ fragments: [Data], completion: @escaping @Sendable ((any Error)?) -> Void) {
        queue.async { [self] in
            guard control != nil else { return completion(CoreBluetoothRadio.RadioError.notConnected) }
            outbox.append(contentsOf: fragments)
            sent = completion
            pump()
        }
    }

    func connected() {
        peripheral.discoverServices([service])
    }

    /// The link ended (or never came up).
    func closed(_ error: (any Error)?) {
        let why = error?.localizedDescription ?? "link closed"
        if let setup {
            self.setup = nil
            setup(.failure(error ?? CoreBluetoothRadio.RadioError.failed(why)))
        } else {
            events.disconnected(why)
        }
        control = nil
        outbox.removeAll()
        sent.take()?(CoreBluetoothRadio.RadioError.notConnected)
    }

    // MARK: CBPeripheralDelegate

    func peripheral(_ peripheral: CBPeripheral, didDiscoverServices error: (any Error)?) {
        guard error == nil, let s = peripheral.services?.first(where: { $0.uuid == service }) else {
            return fail(error ?? CoreBluetoothRadio.RadioError.notADoor)
        }
        peripheral.discoverCharacteristics([controlPoint, response], for: s)
    }

    func peripheral(_ peripheral: CBPeripheral, didDiscoverCharacteristicsFor service: CBService, error: (any Error)?) {
        let found = service.characteristics ?? []
        guard error == nil, let cp = found.first(where: { $0.uuid == controlPoint }),
            let rsp = found.first(where: { $0.uuid == response })
        else { return fail(error ?? CoreBluetoothRadio.RadioError.notADoor) }
        control = cp
        peripheral.setNotifyValue(true, for: rsp)
    }

    func peripheral(
        _ peripheral: CBPeripheral, didUpdateNotificationStateFor characteristic: CBCharacteristic, error: (any Error)?
    ) {
        guard characteristic.uuid == response else { return }
        if let error { return fail(error) }
        if characteristic.isNotifying, let setup {
            self.setup = nil
            setup(.success(self))
        }
    }

    func peripheral(_ peripheral: CBPeripheral, didUpdateValueFor characteristic: CBCharacteristic, error: (any Error)?) {
        guard error == nil, characteristic.uuid == response, let value = characteristic.value else { return }
        events.notified(value)
    }

    func peripheralIsReady(toSendWriteWithoutResponse peripheral: CBPeripheral) {
        pump()
    }

    /// Writes while the stack has room (write without response drops data otherwise).
    private func pump() {
        guard let control else { return }
        while !outbox.isEmpty, peripheral.canSendWriteWithoutResponse {
            peripheral.writeValue(outbox.removeFirst(), for: control, type: .withoutResponse)
        }
        if outbox.isEmpty { sent.take()?(nil) }
    }

    /// Setup failed: report it and drop the link.
    private func fail(_ error: any Error) {
        if let setup {
            self.setup = nil
            setup(.failure(error))
        }
        central.cancelPeripheralConnection(peripheral)
    }
}

extension Optional {
    /// The value, leaving nil behind.
    fileprivate mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}
