import CryptoKit
import Foundation
import KeywayKit
import Security

/// The device key: a P-256 key in the Secure Enclave (every iPhone since the 5s), or a software
/// key where there is none (the simulator). The core registers the public key; the server binds
/// credentials to it; the door checks the handshake signature made with it.
public final class SecureEnclaveKeyStore: DeviceKeyStore, @unchecked Sendable {
    enum KeyError: LocalizedError {
        case accessControl
        var errorDescription: String? { "could not set up the Secure Enclave key's access control" }
    }

    private enum Key {
        case enclave(SecureEnclave.P256.Signing.PrivateKey)
        case software(P256.Signing.PrivateKey)
    }

    private let key: Key
    /// False on the simulator: the key is then an ordinary file, for development only.
    public let isHardwareBacked: Bool

    /// Loads the key kept in `directory`, or creates it.
    public init(directory: URL) throws {
        if SecureEnclave.isAvailable {
            // The file holds the enclave's wrapped key: only this device's enclave can use it.
            let file = directory.appendingPathComponent("device_key.enclave")
            if let blob = try? Data(contentsOf: file),
                let existing = try? SecureEnclave.P256.Signing.PrivateKey(dataRepresentation: blob)
            {
                key = .enclave(existing)
            } else {
                // Usable from the first unlock after boot, so a walk-up unlock can sign while
                // the phone stays locked in a pocket; never synced or backed up.
                guard
                    let access = SecAccessControlCreateWithFlags(
                        nil, kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly, .privateKeyUsage, nil)
                else { throw KeyError.accessControl }
                let created = try SecureEnclave.P256.Signing.PrivateKey(accessControl: access)
                try Self.save(created.dataRepresentation, to: file)
                key = .enclave(created)
            }
            isHardwareBacked = true
        } else {
            let file = directory.appendingPathComponent("device_key.p256")
            if let raw = try? Data(contentsOf: file), let existing = try? P256.Signing.PrivateKey(rawRepresentation: raw) {
                key = .software(existing)
            } else {
                let created = P256.Signing.PrivateKey()
                try Self.save(created.rawRepresentation, to: file)
                key = .software(created)
            }
            isHardwareBacked = false
        }
    }

    public func publicKey() throws -> Data {
        switch key {
        case .enclave(let k): return k.publicKey.x963Representation
        case .software(let k): return k.publicKey.x963Representation
        }
    }

    /// ECDSA over SHA-256 of the message (CryptoKit hashes), as 64 bytes r‖s.
    public func sign(_ message: Data) throws -> Data {
        switch key {
        case .enclave(let k): return try k.signature(for: message).rawRepresentation
        case .software(let k): return try k.signature(for: message).rawRepresentation
        }
    }

    private static func save(_ data: Data, to file: URL) throws {
        try data.write(to: file, options: [.atomic, .completeFileProtectionUntilFirstUserAuthentication])
        var url = file
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try url.setResourceValues(values)
    }
}
