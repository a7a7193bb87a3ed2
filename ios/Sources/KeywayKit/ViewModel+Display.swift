import Foundation
import KeywayShared

// Small read-only helpers over the core's view records, so screens switch over typed values
// instead of comparing strings. No decisions are made here: the core already made them.

/// `UnlockView.state` as an enum.
public enum UnlockPhase: Equatable, Sendable {
    case checking, inProgress, granted, denied, unconfirmed
    /// A state this shell does not know yet (a newer core); shown with the core's message.
    case other(String)

    public init(_ state: String) {
        switch state {
        case "checking": self = .checking
        case "in_progress": self = .inProgress
        case "granted": self = .granted
        case "denied": self = .denied
        case "unconfirmed": self = .unconfirmed
        default: self = .other(state)
        }
    }
}

extension UnlockView {
    public var phase: UnlockPhase { UnlockPhase(state) }

    /// The attempt has ended (the banner can be dismissed).
    public var isFinished: Bool {
        switch phase {
        case .granted, .denied, .unconfirmed, .other: return true
        case .checking, .inProgress: return false
        }
    }

    public var routeLabel: String? {
        switch route {
        case .ble: return "Bluetooth"
        case .cloud: return "cloud"
        case nil: return nil
        }
    }
}

extension LockView {
    /// One line under the door's name: reachability, lockdown, and radio proximity.
    public var statusLine: String {
        var parts: [String] = []
        if lockdown { parts.append("lockdown") }
        if !online { parts.append("controller offline") }
        if nearby {
            parts.append(rssi.map { "nearby, \($0) dBm" } ?? "nearby")
        }
        return parts.isEmpty ? "ready" : parts.joined(separator: " · ")
    }
}

extension ViewModel {
    public func lock(id: String) -> LockView? {
        places.lazy.flatMap(\.locks).first { $0.id == id }
    }

    public func lock(named name: String) -> LockView? {
        places.lazy.flatMap(\.locks).first { $0.name == name }
    }

    public var selectedOrg: OrgView? { orgs.first(where: \.selected) }
}

extension KeywayError {
    /// The message without the Swift case name, for showing to people.
    public var message: String {
        switch self {
        case .InvalidEvent(let m), .Storage(let m), .Platform(let m), .Internal(let m): return m
        }
    }
}
