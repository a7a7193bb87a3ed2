import Foundation
import KeywayKit
import KeywayShared

/// Wires the core to this phone: CoreBluetooth for BLE, the Secure Enclave for the device
/// key, CoreMotion's accelerometer and UIKit's proximity sensor for walk-up, Application
/// Support for the core's files.
@MainActor
public enum KeywayShell {
    public static func makeStore(apiBase: String) throws -> KeywayStore {
        let dir = try FileManager.default
            .url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("Keyway", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let key = try SecureEnclaveKeyStore(directory: dir)
        return try KeywayStore(
            config: CoreConfig(apiBase: apiBase, dataDir: dir.path),
            ble: BleBridge(radio: CoreBluetoothRadio()),
            key: DeviceKeyShell(key),
            motion: CoreMotionSource(),
            proximity: UIKitProximitySource())
    }
}
