import Foundation
import KeywayShared

/// A P-256 device key held by the platform (the Secure Enclave on iOS). The core registers its
/// public key with the server, which binds credentials to it, and asks it to sign the BLE
/// handshake transcript (AUTH). The private key never leaves the platform.
public protocol DeviceKeyStore: Sendable {
    /// The 65-byte uncompressed (X9.63) public key.
    func publicKey() throws -> Data
    /// ECDSA P-256 over SHA-256 of `message`: 64 bytes r‖s (DER also accepted by the core).
    func sign(_ message: Data) throws -> Data
}

/// The core's `KeyShell` over a `DeviceKeyStore`: error mapping only.
public final class DeviceKeyShell: KeyShell, @unchecked Sendable {
    private let store: any DeviceKeyStore

    public init(_ store: any DeviceKeyStore) {
        self.store = store
    }

    public func publicKey() -> Data {
        // The FFI method cannot fail: an unreadable key gives an empty key, which the core
        // treats as invalid (registration then fails with a visible notice).
        (try? store.publicKey()) ?? Data()
    }

    public func sign(message: Data) throws -> Data {
        do {
            return try store.sign(message)
        } catch let e as KeywayError {
            throw e
        } catch {
            throw KeywayError.Platform(message: "device key: \(error)")
        }
    }
}
