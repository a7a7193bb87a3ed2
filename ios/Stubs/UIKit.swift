// Type-checking stand-in for Apple's UIKit on Linux (scripts/check-ios): only the proximity
// sensor and app-lifecycle API ios/Sources/KeywayIOS uses, with Apple's names, labels and
// types. No sensor, no lifecycle.
import Foundation

@MainActor
open class UIDevice: NSObject {
    public static let current = UIDevice()
    open var isProximityMonitoringEnabled: Bool = false
    open var proximityState: Bool { false }
    public static let proximityStateDidChangeNotification = Notification.Name(
        "UIDeviceProximityStateDidChangeNotification")
}

@MainActor
open class UIApplication: NSObject {
    public static let didEnterBackgroundNotification = Notification.Name(
        "UIApplicationDidEnterBackgroundNotification")
    public static let willEnterForegroundNotification = Notification.Name(
        "UIApplicationWillEnterForegroundNotification")
}
