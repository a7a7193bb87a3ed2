package dev.keyway.shell

import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import kotlin.system.exitProcess

/**
 * Runs the JVM tests with one line per test and a closing "N passed, N failed, N skipped"
 * (JUnitCore's own summary counts a skipped test as passed). Exits non-zero on any failure.
 */
fun main() {
    var passed = 0
    var failed = 0
    var skipped = 0
    val core = JUnitCore()
    core.addListener(
        object : RunListener() {
            private var started = 0L
            private var outcome: String? = null

            override fun testStarted(d: Description) {
                started = System.nanoTime()
                outcome = null
            }

            override fun testFailure(f: Failure) {
                outcome = "FAIL"
                println("FAIL ${name(f.description)}\n${f.trace}")
            }

            override fun testAssumptionFailure(f: Failure) {
                outcome = "SKIP"
                println("SKIP ${name(f.description)}: ${f.message}")
            }

            override fun testFinished(d: Description) {
                when (outcome) {
                    null -> {
                        passed++
                        println("ok   ${name(d)} (${(System.nanoTime() - started) / 1_000_000} ms)")
                    }
                    "FAIL" -> failed++
                    else -> skipped++
                }
            }

            private fun name(d: Description) = "${d.testClass?.simpleName}.${d.methodName}"
        },
    )
    core.run(ShellTest::class.java, JourneyTest::class.java)
    println("android-jvm: $passed passed, $failed failed, $skipped skipped")
    exitProcess(if (failed == 0) 0 else 1)
}
