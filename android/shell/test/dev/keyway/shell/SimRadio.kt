package dev.keyway.shell

import com.google.gson.JsonObject
import com.google.gson.JsonParser
import java.io.BufferedReader
import java.io.InputStreamReader
import java.io.Writer
import java.net.Socket
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong

/**
 * A [Radio] on the simulated BLE radio (`keyway-sim-radio`): a phone client of the hub's
 * line protocol (one JSON object per line over loopback TCP, see `sim-radio/src/lib.rs`).
 * It stands in for Android's scanner and GATT client in the JVM test, so [GattBleShell] runs
 * a real handshake with a real `keyway-controller` door.
 */
class SimRadio(port: Int, name: String) : Radio, AutoCloseable {
    private val socket = Socket("127.0.0.1", port)
    private val out: Writer = socket.getOutputStream().bufferedWriter()
    private val welcome = CompletableFuture<Int>()
    private val connects = ConcurrentHashMap<Long, CompletableFuture<JsonObject>>()
    private val links = ConcurrentHashMap<Long, SimLink>()
    private val nextLink = AtomicLong(1)

    @Volatile
    private var report: ((String, ByteArray, Int) -> Unit)? = null

    /** Counters the test checks: the core really drove this radio. */
    val scansStarted = AtomicInteger()
    val writes = AtomicInteger()
    val notifications = AtomicInteger()

    init {
        Thread({ readLoop() }, "sim-radio-$name").apply { isDaemon = true }.start()
        send(obj("op" to "hello", "name" to name))
        send(obj("op" to "scan", "on" to false))
        welcome.get(5, TimeUnit.SECONDS)
    }

    /** Stands still at (x, y) metres; the door is at the origin. */
    fun position(x: Double, y: Double) = send(obj("op" to "position", "x" to x, "y" to y))

    /** Walks through `[t_ms, x, y]` points (relative to now) and stays at the last. */
    fun script(vararg points: Triple<Long, Double, Double>) {
        val o = JsonObject()
        o.addProperty("op", "script")
        o.add(
            "points",
            com.google.gson.JsonArray().apply {
                for ((t, x, y) in points) {
                    add(com.google.gson.JsonArray().apply { add(t); add(x); add(y) })
                }
            },
        )
        send(o)
    }

    override fun startScan(report: (peer: String, payload: ByteArray, rssi: Int) -> Unit) {
        this.report = report
        scansStarted.incrementAndGet()
        send(obj("op" to "scan", "on" to true))
    }

    override fun stopScan() {
        report = null
        send(obj("op" to "scan", "on" to false))
    }

    override fun connect(peer: String, timeoutMs: Long): GattLink {
        val id = nextLink.getAndIncrement()
        val answer = CompletableFuture<JsonObject>()
        connects[id] = answer
        send(obj("op" to "connect", "link" to id, "door" to peer))
        val ev = try {
            answer.get(timeoutMs, TimeUnit.MILLISECONDS)
        } finally {
            connects.remove(id)
        }
        if (ev["ev"].asString != "connected") throw IllegalStateException(ev["error"]?.asString ?: "connect failed")
        return SimLink(id, ev["att_mtu"].asInt).also { links[id] = it }
    }

    override fun close() {
        socket.close()
    }

    private inner class SimLink(private val id: Long, override val attMtu: Int) : GattLink {
        val inbox = LinkedBlockingQueue<ByteArray>()

        @Volatile
        var down: String? = null

        override fun write(fragment: ByteArray) {
            down?.let { throw IllegalStateException("link down: $it") }
            writes.incrementAndGet()
            send(obj("op" to "write", "link" to id, "data" to hex(fragment)))
        }

        override fun nextNotification(timeoutMs: Long): ByteArray? {
            val deadline = System.nanoTime() + timeoutMs * 1_000_000
            while (true) {
                inbox.poll()?.let { return it }
                down?.let { throw IllegalStateException("link down: $it") }
                val left = (deadline - System.nanoTime()) / 1_000_000
                if (left <= 0) return null
                inbox.poll(minOf(left, 50), TimeUnit.MILLISECONDS)?.let { return it }
            }
        }

        override fun close() {
            if (links.remove(id) != null) send(obj("op" to "disconnect", "link" to id))
        }
    }

    private fun readLoop() {
        val input = BufferedReader(InputStreamReader(socket.getInputStream(), Charsets.UTF_8))
        try {
            while (true) {
                val line = input.readLine() ?: break
                val ev = JsonParser.parseString(line).asJsonObject
                when (ev["ev"].asString) {
                    "welcome" -> welcome.complete(ev["att_mtu"].asInt)
                    "advert" -> report?.invoke(ev["door"].asString, unhex(ev["data"].asString), ev["rssi"].asInt)
                    "connected", "connect_failed" -> connects[ev["link"].asLong]?.complete(ev)
                    "notify" -> links[ev["link"].asLong]?.let {
                        notifications.incrementAndGet()
                        it.inbox.add(unhex(ev["data"].asString))
                    }
                    "disconnected" -> links.remove(ev["link"].asLong)?.down = ev["reason"].asString
                    "error" -> System.err.println("sim radio refused a line: ${ev["message"]}")
                }
            }
        } catch (_: java.io.IOException) {
            // closed
        }
        for (l in links.values) l.down = "hub closed"
    }

    private fun send(o: JsonObject) = synchronized(out) {
        out.write(o.toString())
        out.write("\n")
        out.flush()
    }

    private companion object {
        fun obj(vararg fields: Pair<String, Any>) = JsonObject().apply {
            for ((k, v) in fields) {
                when (v) {
                    is String -> addProperty(k, v)
                    is Number -> addProperty(k, v)
                    is Boolean -> addProperty(k, v)
                    else -> throw IllegalArgumentException(k)
                }
            }
        }

        fun hex(b: ByteArray) = b.joinToString("") { "%02x".format(it) }

        fun unhex(s: String) = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
    }
}
