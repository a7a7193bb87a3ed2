import Foundation
import KeywayKit
import UIKit

/// The proximity sensor through UIKit, for walk-up: covered means a pocket or a bag,
/// uncovered the hand. iOS reports it only while the app is in the foreground, and turns the
/// screen off while the sensor is covered (as during a call), which suits a phone slipped into
/// a pocket mid-scan. A phone without the sensor reports nothing and walk-up allows for any
/// carry.
@MainActor
public final class UIKitProximitySource: ProximitySource {
    private var observer: (any NSObjectProtocol)?

    public nonisolated init() {}

    public nonisolated func start(_ covered: @escaping @Sendable (Bool) -> Void) {
        Task { @MainActor in self.begin(covered) }
    }

    public nonisolated func stop() {
        Task { @MainActor in self.end() }
    }

    private func begin(_ covered: @escaping @Sendable (Bool) -> Void) {
        guard observer == nil else { return }
        let device = UIDevice.current
        device.isProximityMonitoringEnabled = true
        // Stays false on devices without the sensor.
        guard device.isProximityMonitoringEnabled else { return }
        covered(device.proximityState)
        observer = NotificationCenter.default.addObserver(
            forName: UIDevice.proximityStateDidChangeNotification, object: device, queue: .main
        ) { _ in
            Task { @MainActor in covered(UIDevice.current.proximityState) }
        }
    }

    private func end() {
        if let observer { NotificationCenter.default.removeObserver(observer) }
        observer = nil
        UIDevice.current.isProximityMonitoringEnabled = false
    }
}
