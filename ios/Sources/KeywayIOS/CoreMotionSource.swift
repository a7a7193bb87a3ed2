import CoreMotion
import Foundation
import KeywayKit

/// The accelerometer through CoreMotion, for walk-up: samples in g become m/s² and go to the
/// core, which decides walking or still. A phone without an accelerometer sends nothing and
/// walk-up decides on Bluetooth signal alone.
public final class CoreMotionSource: MotionSource, @unchecked Sendable {
    /// Standard gravity: CoreMotion reports acceleration in g.
    private static let metresPerSecondSquared = 9.80665
    private let manager = CMMotionManager()
    private let queue = OperationQueue()

    public init() {
        queue.maxConcurrentOperationCount = 1
        queue.name = "dev.keyway.motion"
    }

    public func start(_ sample: @escaping @Sendable (Double, Double, Double) -> Void) {
        guard manager.isAccelerometerAvailable, !manager.isAccelerometerActive else { return }
        manager.accelerometerUpdateInterval = 1.0 / 50.0
        manager.startAccelerometerUpdates(to: queue) { data, _ in
            guard let a = data?.acceleration else { return }
            let g = Self.metresPerSecondSquared
            sample(a.x * g, a.y * g, a.z * g)
        }
    }

    public func stop() {
        manager.stopAccelerometerUpdates()
    }
}
