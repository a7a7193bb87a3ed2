// Type-checking stand-in for Apple's Security framework (and the CoreFoundation types it
// brings) on Linux (scripts/check-ios): only what ios/Sources/KeywayIOS uses.
import Foundation

public final class CFString: @unchecked Sendable {}
public final class CFAllocator {}
public final class CFError {}
public final class SecAccessControl: @unchecked Sendable {}

public struct SecAccessControlCreateFlags: OptionSet, Sendable {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    public static let privateKeyUsage = SecAccessControlCreateFlags(rawValue: 1 << 30)
}

public let kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly = CFString()

public func SecAccessControlCreateWithFlags(
    _ allocator: CFAllocator?, _ protection: AnyObject, _ flags: SecAccessControlCreateFlags,
    _ error: UnsafeMutablePointer<Unmanaged<CFError>?>?
) -> SecAccessControl? { nil }
