package dev.keyway.android

import android.Manifest
import android.app.Activity
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.location.LocationManager
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.util.Log
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ProgressBar
import android.widget.Switch
import android.widget.TextView
import dev.keyway.core.KeywayException
import dev.keyway.core.LockView
import dev.keyway.core.Route
import dev.keyway.shell.KeywayShell
import dev.keyway.shell.Screen
import dev.keyway.shell.ShellEvent
import dev.keyway.shell.UnlockBanner
import dev.keyway.shell.reason
import dev.keyway.shell.statusLine

/**
 * The one screen. It draws the [Screen] the presenter ([KeywayShell]) derives from the
 * core's view model and turns taps into [ShellEvent]s; everything else (session, routes,
 * credentials, walk-up decisions) happens in the core. The platform pieces it wires in are
 * [AndroidRadio] (BLE) and [KeystoreDeviceKey] (the device key).
 */
class MainActivity : Activity() {
    private val main = Handler(Looper.getMainLooper())
    private var shell: KeywayShell? = null
    private var keyWarning: String? = null
    private val motion by lazy { AndroidMotion(this) { shell } }
    private val proximity by lazy { AndroidProximity(this) { shell } }

    private lateinit var status: TextView
    private lateinit var signIn: View
    private lateinit var home: View
    private lateinit var email: EditText
    private lateinit var password: EditText
    private lateinit var signInButton: Button
    private lateinit var signInError: TextView
    private lateinit var inviteCode: EditText
    private lateinit var redeemButton: Button
    private lateinit var inviteError: TextView
    private lateinit var account: TextView
    private lateinit var orgs: LinearLayout
    private lateinit var notice: TextView
    private lateinit var banner: View
    private lateinit var bannerProgress: ProgressBar
    private lateinit var bannerText: TextView
    private lateinit var walkUpNote: TextView
    private lateinit var places: LinearLayout

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        bindViews()

        val key = try {
            KeystoreDeviceKey.loadOrCreate()
        } catch (e: Exception) {
            // No usable Keystore (rare): the core falls back to its software key in filesDir.
            Log.w(TAG, "Android Keystore unavailable", e)
            null
        }
        Log.i(TAG, "device key in secure hardware: ${key?.insideSecureHardware}")
        shell = try {
            KeywayShell.start(
                apiBase = getString(R.string.keyway_api_base),
                dataDir = filesDir.path,
                radio = AndroidRadio.create(this),
                key = key?.shell,
                post = { main.post(it) },
                render = ::render,
            )
        } catch (e: KeywayException) {
            status.text = getString(R.string.core_failed, e.reason())
            null
        } catch (e: LinkageError) {
            // libkeyway_shared.so (or JNA's libjnidispatch.so) is not in the APK for this ABI.
            Log.e(TAG, "core library missing", e)
            status.text = getString(R.string.core_failed, "native library missing (${e.message})")
            null
        }
        if (key == null) keyWarning = getString(R.string.software_key)
        handleInviteLink(intent)
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        handleInviteLink(intent)
    }

    override fun onResume() {
        super.onResume()
        // Scan while the screen is up: taps at the door go over BLE and walk-up can decide.
        if (hasLocationPermission()) {
            send(ShellEvent.StartScan)
            motion.start()
            proximity.start()
        } else {
            requestPermissions(arrayOf(Manifest.permission.ACCESS_FINE_LOCATION), REQUEST_LOCATION)
        }
    }

    override fun onPause() {
        send(ShellEvent.StopScan)
        motion.stop()
        proximity.stop()
        super.onPause()
    }

    override fun onDestroy() {
        shell?.close()
        shell = null
        super.onDestroy()
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<String>, grantResults: IntArray) {
        if (requestCode != REQUEST_LOCATION) return
        if (grantResults.any { it == PackageManager.PERMISSION_GRANTED }) {
            send(ShellEvent.StartScan)
            motion.start()
            proximity.start()
        } else {
            notice.visibility = View.VISIBLE
            notice.text = getString(R.string.bluetooth_needs_permission)
        }
    }

    private fun send(event: ShellEvent) {
        val refused = shell?.send(event) ?: return
        Log.e(TAG, "core refused $event: $refused")
    }

    private fun bindViews() {
        status = find(R.id.status)
        signIn = find(R.id.sign_in)
        home = find(R.id.home)
        email = find(R.id.email)
        password = find(R.id.password)
        signInButton = find(R.id.sign_in_button)
        signInError = find(R.id.sign_in_error)
        inviteCode = find(R.id.invite_code)
        redeemButton = find(R.id.redeem_button)
        inviteError = find(R.id.invite_error)
        account = find(R.id.account)
        orgs = find(R.id.orgs)
        notice = find(R.id.notice)
        banner = find(R.id.unlock_banner)
        bannerProgress = find(R.id.unlock_progress)
        bannerText = find(R.id.unlock_text)
        walkUpNote = find(R.id.walk_up_note)
        places = find(R.id.places)

        signInButton.setOnClickListener {
            send(ShellEvent.Login(email.text.toString().trim(), password.text.toString()))
            password.text.clear()
        }
        redeemButton.setOnClickListener { send(ShellEvent.RedeemInvite(inviteCode.text.toString().trim())) }
        find<Button>(R.id.unlock_dismiss).setOnClickListener { send(ShellEvent.DismissUnlock) }
        find<Button>(R.id.refresh).setOnClickListener { send(ShellEvent.Refresh) }
        find<Button>(R.id.sign_out).setOnClickListener { send(ShellEvent.Logout) }
    }

    /** Draws one [Screen]; called on the main thread. */
    private fun render(screen: Screen) {
        status.visibility = if (screen is Screen.Starting || screen is Screen.Broken) View.VISIBLE else View.GONE
        signIn.visibility = if (screen is Screen.SignIn) View.VISIBLE else View.GONE
        home.visibility = if (screen is Screen.Home) View.VISIBLE else View.GONE
        when (screen) {
            is Screen.Starting -> status.text = getString(R.string.starting)
            is Screen.Broken -> status.text = getString(R.string.core_failed, screen.message)
            is Screen.SignIn -> renderSignIn(screen)
            is Screen.Home -> renderHome(screen)
        }
    }

    private fun renderSignIn(s: Screen.SignIn) {
        signInButton.isEnabled = !s.busy
        signInButton.text = getString(if (s.busy) R.string.signing_in else R.string.sign_in)
        signInError.text = s.error ?: ""
        redeemButton.isEnabled = !s.invite.busy
        redeemButton.text = getString(if (s.invite.busy) R.string.redeeming else R.string.redeem)
        inviteError.text = s.invite.error ?: ""
    }

    private fun renderHome(s: Screen.Home) {
        account.text = if (s.guest) getString(R.string.visitor) else getString(R.string.signed_in_as, s.account)

        orgs.removeAllViews()
        if (s.orgs.size > 1) {
            for (org in s.orgs) {
                orgs.addView(
                    Button(this).apply {
                        text = org.name
                        isEnabled = !org.selected
                        setOnClickListener { send(ShellEvent.SelectOrg(org.id)) }
                    },
                )
            }
        }

        val lines = listOfNotNull(
            s.notice,
            keyWarning,
            getString(R.string.loading).takeIf { s.loading },
            getString(R.string.stale).takeIf { s.stale },
            getString(R.string.scanning).takeIf { s.scanning },
            getString(R.string.invite_accepted).takeIf { s.invite.accepted },
        )
        notice.visibility = if (lines.isEmpty()) View.GONE else View.VISIBLE
        notice.text = lines.joinToString("\n")

        renderBanner(s.unlock)

        val note = s.lastWalkUp
        walkUpNote.visibility = if (note == null) View.GONE else View.VISIBLE
        if (note != null) {
            val name = s.places.flatMap { it.locks }.firstOrNull { it.id == note.lock }?.name ?: note.lock
            walkUpNote.text =
                getString(R.string.walk_up_note, name, note.distanceM, note.skipped ?: getString(R.string.walk_up_opened))
        }

        places.removeAllViews()
        if (s.places.isEmpty()) {
            places.addView(TextView(this).apply { setText(R.string.no_doors) })
        }
        for (place in s.places) {
            places.addView(
                TextView(this).apply {
                    text = place.name
                    setTextAppearance(android.R.style.TextAppearance_Material_Title)
                    setPadding(0, dp(16), 0, dp(4))
                },
            )
            for (lock in place.locks) places.addView(lockRow(lock, busy = s.unlock?.state?.finished == false))
        }
    }

    private fun renderBanner(u: UnlockBanner?) {
        banner.visibility = if (u == null) View.GONE else View.VISIBLE
        if (u == null) return
        bannerProgress.visibility = if (u.state.finished) View.GONE else View.VISIBLE
        val via = when (u.route) {
            Route.BLE -> " (Bluetooth)"
            Route.CLOUD -> " (cloud)"
            null -> ""
        }
        bannerText.text = getString(R.string.unlock_banner, u.lockName.ifEmpty { u.lock }, u.message + via)
    }

    /** A door: name and status, an Open button, and a walk-up switch where the door allows it. */
    private fun lockRow(lock: LockView, busy: Boolean): View {
        val row = LinearLayout(this).apply {
            orientation = LinearLayout.HORIZONTAL
            setPadding(0, dp(4), 0, dp(4))
        }
        row.addView(
            LinearLayout(this).apply {
                orientation = LinearLayout.VERTICAL
                addView(TextView(context).apply { text = lock.name; setTextAppearance(android.R.style.TextAppearance_Material_Medium) })
                addView(TextView(context).apply { text = lock.statusLine() })
            },
            LinearLayout.LayoutParams(0, ViewGroup.LayoutParams.WRAP_CONTENT, 1f),
        )
        if (lock.walkUpAllowed) {
            row.addView(
                Switch(this).apply {
                    setText(R.string.walk_up)
                    isChecked = lock.walkUpEnabled
                    setOnCheckedChangeListener { _, on -> send(ShellEvent.SetWalkUp(lock.id, on)) }
                },
            )
        }
        row.addView(
            Button(this).apply {
                setText(R.string.unlock)
                isEnabled = !busy
                setOnClickListener {
                    sendLastLocation()
                    send(ShellEvent.Unlock(lock.id))
                }
            },
        )
        return row
    }

    /** Hands the core the newest position fix the platform has (for geofenced doors). */
    private fun sendLastLocation() {
        if (!hasLocationPermission()) return
        val lm = getSystemService(Context.LOCATION_SERVICE) as? LocationManager ?: return
        val fix = try {
            lm.getProviders(true).mapNotNull { lm.getLastKnownLocation(it) }.maxByOrNull { it.time }
        } catch (e: SecurityException) {
            null
        } ?: return
        send(ShellEvent.SetLocation(fix.latitude, fix.longitude, fix.time))
    }

    private fun handleInviteLink(intent: Intent?) {
        val link = intent?.takeIf { it.action == Intent.ACTION_VIEW }?.dataString ?: return
        send(ShellEvent.RedeemInvite(link))
    }

    private fun hasLocationPermission() =
        checkSelfPermission(Manifest.permission.ACCESS_FINE_LOCATION) == PackageManager.PERMISSION_GRANTED

    /** findViewById with a checked cast (API 23's is not generic). */
    private inline fun <reified T : View> find(id: Int): T = findViewById(id) as T

    private fun dp(v: Int) = (v * resources.displayMetrics.density).toInt()

    private companion object {
        const val TAG = "Keyway"
        const val REQUEST_LOCATION = 1
    }
}
