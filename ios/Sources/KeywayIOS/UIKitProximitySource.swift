import Foundation
import KeywayKit
import UIKit

/// The proximity sensor through UIKit, for walk-up: covered means a pocket or a bag,
/// uncovered the hand. iOS reports it only while the app is in the foreground (and turns the
/// screen off while the sensor is covered, as during a call, which suits a phone slipped into
/// a pocket mid-scan), so in the background this reports "no reading" and walk-up allows for
/// any carry. A phone without the sensor reports nothing.
@MainActor
public final class UIKitProximitySource: ProximitySource {
    private var report: (@Sendable (Bool?) -> Void)?
    private var observers: [any NSObjectProtocol] = []

    public nonisolated init() {}

    public nonisolated func start(_ covered: @escaping @Sendable (Bool?) -> Void) {
        onMain { $0.begin(covered) }
    }

    /// Synchronous from the main thread (where `KeywayStore` calls it), so no reading arrives
    /// after the store has told the core the sensor stopped.
    public nonisolated func stop() {
        onMain { $0.end() }
    }

    private nonisolated func onMain(_ work: @escaping @MainActor @Sendable (UIKitProximitySource) -> Void) {
        if Thread.isMainThread {
            MainActor.assumeIsolated { work(self) }
        } else {
            Task { @MainActor in work(self) }
        }
    }

    private func begin(_ covered: @escaping @Sendable (Bool?) -> Void) {
        guard report == nil else { return }
        let device = UIDevice.current
        device.isProximityMonitoringEnabled = true
        // Stays false on devices without the sensor.
        guard device.isProximityMonitoringEnabled else { return }
        report = covered
        covered(device.proximityState)
        let center = NotificationCenter.default
        // Observers run on the main queue; `report` is nil once stopped, so a late
        // notification cannot bring back a stale reading.
        observers = [
            center.addObserver(forName: UIDevice.proximityStateDidChangeNotification, object: device, queue: .main) {
                _ in MainActor.assumeIsolated { self.report?(UIDevice.current.proximityState) }
            },
            center.addObserver(forName: UIApplication.didEnterBackgroundNotification, object: nil, queue: .main) {
                _ in MainActor.assumeIsolated { self.report?(nil) }
            },
            center.addObserver(forName: UIApplication.willEnterForegroundNotification, object: nil, queue: .main) {
                _ in MainActor.assumeIsolated { self.report?(UIDevice.current.proximityState) }
            },
        ]
    }

    private func end() {
        for observer in observers { NotificationCenter.default.removeObserver(observer) }
        observers = []
        report = nil
        UIDevice.current.isProximityMonitoringEnabled = false
    }
}
