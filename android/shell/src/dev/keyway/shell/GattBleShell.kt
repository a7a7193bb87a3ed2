package dev.keyway.shell

import dev.keyway.core.BleShell
import dev.keyway.core.GattReassembler
import dev.keyway.core.KeywayCoreInterface
import dev.keyway.core.KeywayException
import dev.keyway.core.gattFragment
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

/**
 * A platform radio as [GattBleShell] needs it. The app implements it with Android's
 * BluetoothLeScanner and BluetoothGatt (`AndroidRadio`); the JVM test with the simulated radio.
 * Calls come from the core's worker threads and may block (never the UI thread).
 */
interface Radio {
    /**
     * Starts reporting advertisements that carry service data under the Keyway service UUID
     * (`gattLayout().serviceUuid`): [report] gets the peer address, that service data and the
     * RSSI. Throws when the radio is off or scanning is not permitted.
     */
    fun startScan(report: (peer: String, payload: ByteArray, rssi: Int) -> Unit)

    fun stopScan()

    /**
     * Connects to [peer], finds the Keyway service and subscribes to its response
     * characteristic; gives up after [timeoutMs].
     */
    fun connect(peer: String, timeoutMs: Long): GattLink
}

/** One connection to a door's Keyway GATT service. */
interface GattLink {
    /** The negotiated ATT MTU (23 until a larger one is agreed). */
    val attMtu: Int

    /** One write without response to the control point; returns when the stack took it. */
    fun write(fragment: ByteArray)

    /** The next notification from the response characteristic, or null after [timeoutMs]. */
    fun nextNotification(timeoutMs: Long): ByteArray?

    fun close()
}

/**
 * The core's [BleShell] over a [Radio]: scan results go to `KeywayCore.bleAdvert`, each
 * exchange writes the message as GATT fragments and joins the door's notifications into the
 * reply. Fragmenting and joining are the core's (`gattFragment`, [GattReassembler]), so the
 * framing is the same code the door and the CLI use. Every failure reaches the core as
 * `KeywayException.Platform`, which it turns into a route failure (and a cloud fallback).
 */
class GattBleShell(
    private val radio: Radio,
    private val connectTimeoutMs: Long = 10_000,
    private val replyTimeoutMs: Long = 5_000,
) : BleShell {
    @Volatile
    private var core: KeywayCoreInterface? = null
    private val links = ConcurrentHashMap<Long, GattLink>()
    private val nextId = AtomicLong(1)

    /** Where scan results go; the core is built with this shell, so it is attached after. */
    fun attach(core: KeywayCoreInterface?) {
        this.core = core
    }

    override fun startScan() = platform("scan") {
        radio.startScan { peer, payload, rssi ->
            core?.bleAdvert(peer, payload, rssi.coerceIn(-128, 127).toShort())
        }
    }

    override fun stopScan() = quietly { radio.stopScan() }

    override fun connect(peer: String): ULong = platform("connect") {
        val link = radio.connect(peer, connectTimeoutMs)
        val id = nextId.getAndIncrement()
        links[id] = link
        id.toULong()
    }

    override fun exchange(connection: ULong, message: ByteArray): ByteArray = platform("exchange") {
        val link = links[connection.toLong()] ?: throw KeywayException.Platform("not connected")
        for (fragment in gattFragment(message, link.attMtu.toUInt())) {
            link.write(fragment)
        }
        GattReassembler().use { reassembler ->
            val deadline = System.nanoTime() + replyTimeoutMs * 1_000_000
            var reply: ByteArray? = null
            while (reply == null) {
                val leftMs = (deadline - System.nanoTime()) / 1_000_000
                val notification = (if (leftMs > 0) link.nextNotification(leftMs) else null)
                    ?: throw KeywayException.Platform("door did not answer in time")
                reply = reassembler.push(notification)
            }
            reply
        }
    }

    override fun disconnect(connection: ULong) {
        links.remove(connection.toLong())?.let { quietly { it.close() } }
    }

    /** Closes every open link (the Activity is going away). */
    fun closeAll() {
        for (id in links.keys.toList()) disconnect(id.toULong())
        quietly { radio.stopScan() }
    }

    private inline fun <T> platform(what: String, block: () -> T): T =
        try {
            block()
        } catch (e: KeywayException.Platform) {
            throw e
        } catch (e: KeywayException) {
            throw KeywayException.Platform("$what: ${e.reason()}")
        } catch (e: Exception) {
            throw KeywayException.Platform("$what: ${e.message ?: e.javaClass.simpleName}")
        }

    /** For calls the core cannot be told about (no error in the trait): never throw. */
    private inline fun quietly(block: () -> Unit) {
        try {
            block()
        } catch (_: Exception) {
        }
    }
}

/** The core's own sentence inside a [KeywayException] (`message` adds a "detail=" prefix). */
fun KeywayException.reason(): String = when (this) {
    is KeywayException.InvalidEvent -> detail
    is KeywayException.Storage -> detail
    is KeywayException.Platform -> detail
    is KeywayException.Internal -> detail
}
