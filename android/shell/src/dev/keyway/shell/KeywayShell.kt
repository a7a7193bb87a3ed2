package dev.keyway.shell

import dev.keyway.core.CoreConfig
import dev.keyway.core.CoreObserver
import dev.keyway.core.KeyShell
import dev.keyway.core.KeywayCore
import dev.keyway.core.KeywayException
import dev.keyway.core.ViewModel
import java.util.concurrent.atomic.AtomicBoolean

/**
 * The presenter between a screen and the core: builds the core with the platform's radio and
 * device key, forwards [ShellEvent]s, and on every core render hands a fresh [Screen] to
 * [render] on the UI thread ([post] gets there: a main-looper Handler on Android, the caller's
 * thread in tests). Renders that pile up while one is pending are drawn once.
 *
 * No Android types here, so it runs on the JVM against the real core library.
 */
class KeywayShell private constructor(
    private val post: (Runnable) -> Unit,
    private val render: (Screen) -> Unit,
) : AutoCloseable {
    private val observer = Observer()
    private val pending = AtomicBoolean(false)
    private var ble: GattBleShell? = null

    @Volatile
    private var core: KeywayCore? = null

    /** Sends one event; returns the core's reason when it refused it (never expected). */
    fun send(event: ShellEvent): String? {
        val c = core ?: return "the core is closed"
        return try {
            c.sendEvent(event.json())
            null
        } catch (e: KeywayException) {
            e.reason()
        }
    }

    /**
     * One accelerometer sample in m/s² (gravity included), 50–100 a second while scanning.
     * The core decides walking or still from them (walk-up needs surer evidence while the
     * wearer walks) and reports that in the view model's `motion`.
     */
    fun accelerometer(x: Double, y: Double, z: Double) {
        core?.accelerometer(x, y, z)
    }

    /** The accelerometer stopped: walk-up goes back to Bluetooth signal alone. */
    fun accelerometerStopped() {
        core?.accelerometerStopped()
    }

    /**
     * The proximity sensor became covered (pocket, bag) or uncovered (in the hand); sent on
     * each change while scanning. Walk-up then knows how much signal the phone's carry can
     * cost, and the view model's `carry` shows it.
     */
    fun proximity(covered: Boolean) {
        core?.proximity(covered)
    }

    /** The proximity sensor stopped: walk-up no longer knows how the phone is carried. */
    fun proximityStopped() {
        core?.proximityStopped()
    }

    /** The current view model (what [Screen.of] reads). */
    fun view(): ViewModel? = core?.view()

    /** Tells the screen to draw now, e.g. after a configuration change. */
    fun refreshScreen() = scheduleRender()

    override fun close() {
        val c = core ?: return
        core = null
        ble?.attach(null)
        ble?.closeAll()
        c.close()
    }

    private fun scheduleRender() {
        if (!pending.compareAndSet(false, true)) return
        post(
            Runnable {
                pending.set(false)
                val c = core ?: return@Runnable
                val screen = try {
                    Screen.of(c.view())
                } catch (e: KeywayException) {
                    Screen.Broken(e.reason())
                }
                render(screen)
            },
        )
    }

    /** The core calls this from its own threads after every view model change. */
    private inner class Observer : CoreObserver {
        override fun onRender() = scheduleRender()
    }

    companion object {
        /**
         * Starts the core. [radio] null means no Bluetooth (cloud unlocks only); [key] null
         * means the core's own software key in [dataDir]. Throws [KeywayException] when the
         * data directory cannot be used.
         */
        fun start(
            apiBase: String,
            dataDir: String,
            radio: Radio?,
            key: KeyShell?,
            post: (Runnable) -> Unit,
            render: (Screen) -> Unit,
        ): KeywayShell {
            val shell = KeywayShell(post, render)
            val ble = radio?.let { GattBleShell(it) }
            val core = KeywayCore.withPlatform(CoreConfig(apiBase, dataDir), shell.observer, ble, key)
            ble?.attach(core)
            shell.ble = ble
            shell.core = core
            shell.scheduleRender() // renders before `core` was set were dropped
            return shell
        }
    }
}
