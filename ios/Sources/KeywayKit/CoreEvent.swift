import Foundation
import KeywayShared

/// What the user (or the platform) asks of the core: the shell events of the Rust
/// `app::Event`, typed so screens cannot misspell them. `json` is what crosses the FFI
/// (`KeywayCore.sendEvent`): unit events as a string (`"logout"`), the others as
/// `{"name": {fields}}` with snake_case names, as serde encodes them.
public enum CoreEvent: Equatable, Sendable {
    /// Point the core at a server and restore the stored session (the core sends this itself
    /// on construction with `CoreConfig.apiBase`).
    case start(apiBase: String)
    case login(email: String, password: String)
    case logout
    case selectOrg(id: String)
    /// Reload places, locks and credentials for the current organization.
    case refresh
    case unlock(lock: String)
    case dismissUnlock
    case setWalkUp(lock: String, enabled: Bool)
    /// A visitor invite: a bare code or a link carrying one.
    case redeemInvite(code: String)
    case startScan
    case stopScan
    /// A position fix from the platform's location service (for geofenced doors).
    case setLocation(latitude: Double, longitude: Double, fixMs: UInt64)
    /// The wearer walks or stands, from a platform activity API (raw accelerometer samples go
    /// to `KeywayCore.accelerometer` instead, through `KeywayStore`'s `MotionSource`).
    case setMotion(Motion)
    /// How the phone is carried, from a platform API (proximity-sensor changes go to
    /// `KeywayCore.proximity` instead, through `KeywayStore`'s `ProximitySource`).
    case setCarry(Carry)

    public var json: String {
        switch self {
        case .start(let apiBase): return Self.encode("start", ["api_base": .string(apiBase)])
        case .login(let email, let password):
            return Self.encode("login", ["email": .string(email), "password": .string(password)])
        case .logout: return Self.unit("logout")
        case .selectOrg(let id): return Self.encode("select_org", ["org": .string(id)])
        case .refresh: return Self.unit("refresh")
        case .unlock(let lock): return Self.encode("unlock", ["lock": .string(lock)])
        case .dismissUnlock: return Self.unit("dismiss_unlock")
        case .setWalkUp(let lock, let enabled):
            return Self.encode("set_walk_up", ["lock": .string(lock), "enabled": .bool(enabled)])
        case .redeemInvite(let code): return Self.encode("redeem_invite", ["code": .string(code)])
        case .startScan: return Self.unit("start_scan")
        case .stopScan: return Self.unit("stop_scan")
        case .setLocation(let latitude, let longitude, let fixMs):
            return Self.encode(
                "set_location",
                ["latitude": .double(latitude), "longitude": .double(longitude), "fix_ms": .uint(fixMs)])
        case .setMotion(let motion):
            let name: String
            switch motion {
            case .unknown: name = "unknown"
            case .walking: name = "walking"
            case .still: name = "still"
            }
            return "{\"set_motion\":\"\(name)\"}"
        case .setCarry(let carry):
            let name: String
            switch carry {
            case .unknown: name = "unknown"
            case .covered: name = "covered"
            case .uncovered: name = "uncovered"
            }
            return "{\"set_carry\":\"\(name)\"}"
        }
    }

    private enum Field: Encodable {
        case string(String), bool(Bool), double(Double), uint(UInt64)

        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .string(let v): try c.encode(v)
            case .bool(let v): try c.encode(v)
            case .double(let v): try c.encode(v)
            case .uint(let v): try c.encode(v)
            }
        }
    }

    private static func unit(_ name: String) -> String { "\"\(name)\"" }

    private static func encode(_ name: String, _ fields: [String: Field]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Strings, bools and finite numbers always encode; a NaN position is the caller's bug
        // and becomes an event the core rejects (`KeywayError.InvalidEvent`).
        guard let data = try? encoder.encode([name: fields]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
