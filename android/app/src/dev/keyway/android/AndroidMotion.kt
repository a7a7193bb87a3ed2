package dev.keyway.android

import android.content.Context
import android.hardware.Sensor
import android.hardware.SensorEvent
import android.hardware.SensorEventListener
import android.hardware.SensorManager
import dev.keyway.shell.KeywayShell

/**
 * Forwards the accelerometer (m/s², gravity included) to the core while the screen scans, so
 * walk-up knows whether its wearer walks or stands; the classifying is the core's. Phones
 * without an accelerometer send nothing and walk-up decides on Bluetooth signal alone.
 */
class AndroidMotion(context: Context, private val shell: () -> KeywayShell?) : SensorEventListener {
    private val sensors = context.getSystemService(Context.SENSOR_SERVICE) as? SensorManager
    private val accelerometer = sensors?.getDefaultSensor(Sensor.TYPE_ACCELEROMETER)
    private var running = false

    fun start() {
        if (running || accelerometer == null) return
        // SENSOR_DELAY_GAME: about 50 samples a second, what the core's detector expects.
        running = sensors?.registerListener(this, accelerometer, SensorManager.SENSOR_DELAY_GAME) == true
    }

    fun stop() {
        if (!running) return
        sensors?.unregisterListener(this)
        running = false
        shell()?.accelerometerStopped()
    }

    override fun onSensorChanged(event: SensorEvent) {
        val v = event.values
        if (v.size < 3) return
        shell()?.accelerometer(v[0].toDouble(), v[1].toDouble(), v[2].toDouble())
    }

    override fun onAccuracyChanged(sensor: Sensor, accuracy: Int) = Unit
}
