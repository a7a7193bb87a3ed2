// Type-checking stand-in for Apple's UIKit on Linux (scripts/check-ios): only the proximity
// sensor API ios/Sources/KeywayIOS uses, with Apple's names, labels and types. No sensor.
import Foundation

@MainActor
open class UIDevice: NSObject {
    public static let current = UIDevice()
    open var isProximityMonitoringEnabled: Bool = false
    open var proximityState: Bool { false }
    public static let proximityStateDidChangeNotification = Notification.Name(
        "UIDeviceProximityStateDidChangeNotification")
}
