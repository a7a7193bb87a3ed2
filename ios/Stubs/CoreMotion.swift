// Type-checking stand-in for Apple's CoreMotion on Linux (scripts/check-ios): only the
// accelerometer API ios/Sources/KeywayIOS uses, with Apple's names, labels and types. No sensor.
import Foundation

public struct CMAcceleration: Sendable {
    public var x: Double
    public var y: Double
    public var z: Double
}

open class CMAccelerometerData: NSObject {
    open var acceleration: CMAcceleration { CMAcceleration(x: 0, y: 0, z: 0) }
}

public typealias CMAccelerometerHandler = (CMAccelerometerData?, (any Error)?) -> Void

open class CMMotionManager: NSObject {
    override public init() {}
    open var accelerometerUpdateInterval: TimeInterval = 0.1
    open var isAccelerometerAvailable: Bool { false }
    open var isAccelerometerActive: Bool { false }
    open func startAccelerometerUpdates(to queue: OperationQueue, withHandler handler: @escaping CMAccelerometerHandler) {}
    open func stopAccelerometerUpdates() {}
}
