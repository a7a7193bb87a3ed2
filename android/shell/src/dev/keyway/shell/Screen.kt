package dev.keyway.shell

import dev.keyway.core.InviteView
import dev.keyway.core.LockView
import dev.keyway.core.OrgView
import dev.keyway.core.PlaceView
import dev.keyway.core.Route
import dev.keyway.core.UnlockView
import dev.keyway.core.ViewModel
import dev.keyway.core.WalkUpNote

/**
 * Which screen to draw and what is on it, read straight off the core's [ViewModel]. Nothing
 * here decides anything the core has not decided: it only picks the screen and names the
 * states, so an Activity (or a JVM test) can draw it without parsing strings.
 */
sealed class Screen {
    /** Stored state is still loading: whether someone is signed in is not known yet. */
    object Starting : Screen()

    /** Nobody signed in: email + password, or redeem a visitor invite. */
    data class SignIn(
        val busy: Boolean,
        val error: String?,
        val invite: InviteView,
    ) : Screen()

    /** Signed in (as staff or as a visitor with an invite). */
    data class Home(
        val account: String,
        val guest: Boolean,
        /** Shown as a selector when there is more than one. */
        val orgs: List<OrgView>,
        val places: List<PlaceView>,
        /** Unlock progress or result, on top of the list until dismissed. */
        val unlock: UnlockBanner?,
        val notice: String?,
        /** The list comes from the offline cache. */
        val stale: Boolean,
        val loading: Boolean,
        val scanning: Boolean,
        val invite: InviteView,
        val lastWalkUp: WalkUpNote?,
    ) : Screen()

    /** The core could not be read (an internal error); nothing else to draw. */
    data class Broken(val message: String) : Screen()

    companion object {
        fun of(view: ViewModel): Screen = when {
            !view.ready -> Starting
            !view.signedIn -> SignIn(view.authBusy, view.authError, view.invite)
            else -> Home(
                account = view.userEmail ?: "",
                guest = view.guest,
                orgs = view.orgs,
                places = view.places,
                unlock = view.unlock?.let(UnlockBanner::of),
                notice = view.notice,
                stale = view.stale,
                loading = view.loading,
                scanning = view.scanning,
                invite = view.invite,
                lastWalkUp = view.lastWalkUp,
            )
        }
    }
}

/** The core's unlock states (`UnlockView.state`). */
enum class UnlockState(val wire: String, val finished: Boolean) {
    CHECKING("checking", false),
    IN_PROGRESS("in_progress", false),
    GRANTED("granted", true),
    DENIED("denied", true),
    /** Sent to the door, no verdict came back: it may have opened. */
    UNCONFIRMED("unconfirmed", true),
    ;

    companion object {
        /** Unknown states (a newer core) are shown as still in progress. */
        fun of(wire: String): UnlockState = entries.firstOrNull { it.wire == wire } ?: IN_PROGRESS
    }
}

data class UnlockBanner(
    val lock: String,
    val lockName: String,
    val state: UnlockState,
    val route: Route?,
    /** The core's sentence for the user ("door opened", "access expired", ...). */
    val message: String,
    /** Shared reason code when denied (`access_expired`, `too_far`, ...). */
    val reason: String?,
    val walkUp: Boolean,
) {
    companion object {
        fun of(u: UnlockView) =
            UnlockBanner(u.lock, u.lockName, UnlockState.of(u.state), u.route, u.message, u.reason, u.walkUp)
    }
}

/** One line of facts about a lock for its row, e.g. "online · nearby (-61 dBm) · walk-up on". */
fun LockView.statusLine(): String = buildList {
    add(if (online) "online" else "offline")
    if (lockdown) add("lockdown")
    if (nearby) add(rssi?.let { "nearby ($it dBm)" } ?: "nearby")
    if (walkUpEnabled) add("walk-up on")
}.joinToString(" · ")
