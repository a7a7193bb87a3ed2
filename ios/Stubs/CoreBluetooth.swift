// Type-checking stand-in for Apple's CoreBluetooth on Linux (scripts/check-ios): only what
// ios/Sources/KeywayIOS uses, with Apple's names, labels and types. The delegate methods the
// shell relies on are `@optional` in Apple's SDK but required here, so a misspelt one (which
// CoreBluetooth would silently never call) fails the check.
import Foundation

public enum CBManagerState: Int, Sendable {
    case unknown, resetting, unsupported, unauthorized, poweredOff, poweredOn
}

public enum CBCharacteristicWriteType: Int, Sendable {
    case withResponse, withoutResponse
}

public let CBAdvertisementDataServiceDataKey = "kCBAdvDataServiceData"
public let CBCentralManagerScanOptionAllowDuplicatesKey = "kCBScanOptionAllowDuplicates"
public let CBCentralManagerOptionShowPowerAlertKey = "kCBInitOptionShowPowerAlert"

open class CBUUID: NSObject, @unchecked Sendable {
    public init(string: String) {}
}

open class CBAttribute: NSObject {
    open var uuid: CBUUID { CBUUID(string: "") }
}

open class CBService: CBAttribute {
    open var characteristics: [CBCharacteristic]? { nil }
}

open class CBCharacteristic: CBAttribute {
    open var value: Data? { nil }
    open var isNotifying: Bool { false }
}

open class CBPeer: NSObject {
    open var identifier: UUID { UUID() }
}

open class CBPeripheral: CBPeer {
    weak open var delegate: (any CBPeripheralDelegate)?
    open var services: [CBService]? { nil }
    open var canSendWriteWithoutResponse: Bool { true }
    open func discoverServices(_ serviceUUIDs: [CBUUID]?) {}
    open func discoverCharacteristics(_ characteristicUUIDs: [CBUUID]?, for service: CBService) {}
    open func setNotifyValue(_ enabled: Bool, for characteristic: CBCharacteristic) {}
    open func writeValue(_ data: Data, for characteristic: CBCharacteristic, type: CBCharacteristicWriteType) {}
    open func maximumWriteValueLength(for type: CBCharacteristicWriteType) -> Int { 20 }
}

open class CBManager: NSObject {
    open var state: CBManagerState { .unknown }
}

open class CBCentralManager: CBManager {
    public init(delegate: (any CBCentralManagerDelegate)?, queue: DispatchQueue?, options: [String: Any]? = nil) {}
    open func scanForPeripherals(withServices serviceUUIDs: [CBUUID]?, options: [String: Any]? = nil) {}
    open func stopScan() {}
    open func connect(_ peripheral: CBPeripheral, options: [String: Any]? = nil) {}
    open func cancelPeripheralConnection(_ peripheral: CBPeripheral) {}
    open func retrievePeripherals(withIdentifiers identifiers: [UUID]) -> [CBPeripheral] { [] }
}

public protocol CBCentralManagerDelegate: NSObjectProtocol {
    func centralManagerDidUpdateState(_ central: CBCentralManager)
    func centralManager(
        _ central: CBCentralManager, didDiscover peripheral: CBPeripheral,
        advertisementData: [String: Any], rssi RSSI: NSNumber)
    func centralManager(_ central: CBCentralManager, didConnect peripheral: CBPeripheral)
    func centralManager(_ central: CBCentralManager, didFailToConnect peripheral: CBPeripheral, error: (any Error)?)
    func centralManager(_ central: CBCentralManager, didDisconnectPeripheral peripheral: CBPeripheral, error: (any Error)?)
}

public protocol CBPeripheralDelegate: NSObjectProtocol {
    func peripheral(_ peripheral: CBPeripheral, didDiscoverServices error: (any Error)?)
    func peripheral(_ peripheral: CBPeripheral, didDiscoverCharacteristicsFor service: CBService, error: (any Error)?)
    func peripheral(_ peripheral: CBPeripheral, didUpdateNotificationStateFor characteristic: CBCharacteristic, error: (any Error)?)
    func peripheral(_ peripheral: CBPeripheral, didUpdateValueFor characteristic: CBCharacteristic, error: (any Error)?)
    func peripheralIsReady(toSendWriteWithoutResponse peripheral: CBPeripheral)
}
