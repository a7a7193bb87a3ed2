package dev.keyway.shell

import dev.keyway.core.Carry
import dev.keyway.core.Motion

/**
 * What a user (or the platform) asks of the core, encoded as the core's JSON shell events
 * (`app::Event` in `shared/src/app/mod.rs`: `"logout"`, `{"unlock": {"lock": ".."}}`, ...).
 * The shell decides nothing: it names the intent and the core does the rest.
 */
sealed class ShellEvent {
    /** The event as the JSON `KeywayCore.sendEvent` takes. */
    abstract fun json(): String

    data class Login(val email: String, val password: String) : ShellEvent() {
        override fun json() = obj("login", "email" to email, "password" to password)
        override fun toString() = "Login(email=$email)" // never log the password
    }

    object Logout : ShellEvent() {
        override fun json() = "\"logout\""
    }

    data class SelectOrg(val org: String) : ShellEvent() {
        override fun json() = obj("select_org", "org" to org)
    }

    object Refresh : ShellEvent() {
        override fun json() = "\"refresh\""
    }

    data class Unlock(val lock: String) : ShellEvent() {
        override fun json() = obj("unlock", "lock" to lock)
    }

    object DismissUnlock : ShellEvent() {
        override fun json() = "\"dismiss_unlock\""
    }

    data class SetWalkUp(val lock: String, val enabled: Boolean) : ShellEvent() {
        override fun json() = obj("set_walk_up", "lock" to lock, "enabled" to enabled)
    }

    /** A bare invite code or a link carrying one; the core extracts the code. */
    data class RedeemInvite(val code: String) : ShellEvent() {
        override fun json() = obj("redeem_invite", "code" to code)
    }

    object StartScan : ShellEvent() {
        override fun json() = "\"start_scan\""
    }

    object StopScan : ShellEvent() {
        override fun json() = "\"stop_scan\""
    }

    /** A position fix from the platform's location service (WGS84 degrees, unix ms). */
    data class SetLocation(val latitude: Double, val longitude: Double, val fixMs: Long) : ShellEvent() {
        override fun json() =
            obj("set_location", "latitude" to latitude, "longitude" to longitude, "fix_ms" to fixMs)
    }

    /**
     * The wearer walks or stands, from a platform activity API; shells with raw accelerometer
     * samples use [KeywayShell.accelerometer] instead.
     */
    data class SetMotion(val motion: Motion) : ShellEvent() {
        override fun json() = "{\"set_motion\":${quote(motion.name.lowercase())}}"
    }

    /**
     * How the phone is carried, from a platform API; shells with the raw proximity sensor use
     * [KeywayShell.proximity] instead.
     */
    data class SetCarry(val carry: Carry) : ShellEvent() {
        override fun json() = "{\"set_carry\":${quote(carry.name.lowercase())}}"
    }

    internal companion object {
        /** `{"name": {fields...}}`: the shape of every event with fields. */
        fun obj(name: String, vararg fields: Pair<String, Any>): String =
            fields.joinToString(",", "{${quote(name)}:{", "}}") { (k, v) -> "${quote(k)}:${value(v)}" }

        private fun value(v: Any): String = when (v) {
            is String -> quote(v)
            is Boolean -> v.toString()
            is Long, is Int -> v.toString()
            is Double -> {
                require(v.isFinite()) { "not a JSON number: $v" }
                v.toString()
            }
            else -> throw IllegalArgumentException("unsupported JSON value ${v::class}")
        }

        /** A JSON string literal (RFC 8259 escaping). */
        fun quote(s: String): String {
            val b = StringBuilder(s.length + 2).append('"')
            for (c in s) {
                when {
                    c == '"' -> b.append("\\\"")
                    c == '\\' -> b.append("\\\\")
                    c == '\n' -> b.append("\\n")
                    c == '\r' -> b.append("\\r")
                    c == '\t' -> b.append("\\t")
                    c < ' ' -> b.append("\\u%04x".format(c.code))
                    else -> b.append(c)
                }
            }
            return b.append('"').toString()
        }
    }
}
